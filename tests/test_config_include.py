"""``!include FILE`` and ``!include dir/*.yaml``, relative to the including file."""

from __future__ import annotations

from pathlib import Path

import pytest

from configuration import config


def _site(domain: str, check: str = "status-is: 200") -> str:
    return f"domain: {domain}\npaths:\n  - path: /\n    checks:\n      - {check}\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "conf" / "sites").mkdir(parents=True)
    (tmp_path / "conf" / "general.yaml").write_text("frequency: 1m\nipv6: false\n")
    (tmp_path / "conf" / "sites" / "a.yaml").write_text(_site("https://a.example.org"))
    (tmp_path / "conf" / "sites" / "b.yaml").write_text(_site("https://b.example.org"))
    (tmp_path / "conf" / "sites" / "notes.txt").write_text("not a website")
    return tmp_path / "conf"


def _domains(cfg: config.Config) -> list[str]:
    return sorted({t.domain for t in cfg.tasks.values()})


def test_glob_as_the_whole_list(tree: Path):
    main = tree / "main.yaml"
    main.write_text("general: !include general.yaml\nwebsites: !include sites/*.yaml\n")
    cfg = config.parse(main, {})
    assert _domains(cfg) == ["a.example.org", "b.example.org"]
    assert cfg.general == {"frequency": "1m", "ipv6": False}


def test_glob_and_file_mixed_with_inline_websites(tree: Path):
    (tree / "c.yaml").write_text(_site("https://c.example.org"))
    main = tree / "main.yaml"
    main.write_text(
        "general: {frequency: 1m}\nwebsites:\n  - !include sites/*.yaml\n"
        "  - !include c.yaml\n  - domain: https://d.example.org\n    paths: []\n"
    )
    assert _domains(config.parse(main, {})) == ["a.example.org", "b.example.org", "c.example.org"]


def test_paths_are_relative_to_the_including_file(tree: Path, tmp_path: Path):
    (tree / "sites" / "nested.yaml").write_text(
        "domain: https://n.example.org\npaths: !include ../paths/n.yaml\n"
    )
    (tree / "paths").mkdir()
    (tree / "paths" / "n.yaml").write_text("- path: /n\n  checks: [status-is: 204]\n")
    main = tmp_path / "elsewhere.yaml"
    main.write_text("general: {frequency: 1m}\nwebsites: !include conf/sites/*.yaml\n")
    cfg = config.parse(main, {})
    assert "https://n.example.org/n" in {t.url for t in cfg.tasks.values()}


def test_error_in_included_file_names_that_file_and_the_full_key_path(tree: Path):
    (tree / "sites" / "b.yaml").write_text(_site("https://b.example.org", "status-is: 999"))
    main = tree / "main.yaml"
    main.write_text("general: {frequency: 1m}\nwebsites:\n  - !include sites/*.yaml\n")
    with pytest.raises(config.ConfigError) as err:
        config.parse(main, {})
    assert [str(p) for p in err.value.problems] == [
        f"{tree}/sites/b.yaml:5:20: websites[0][1].paths[0].checks[0].status-is: expected an "
        "HTTP status code (100-599), got 999"
    ]


@pytest.mark.parametrize(
    ("include", "message"),
    [
        pytest.param(
            "missing.yaml",
            "cannot read {tree}/missing.yaml: No such file or directory",
            id="missing-file",
        ),
        pytest.param("main.yaml", "!include loops back to {tree}/main.yaml", id="loop"),
    ],
)
def test_include_problems_point_at_the_include(tree: Path, include: str, message: str):
    main = tree / "main.yaml"
    main.write_text(f"general: {{frequency: 1m}}\nwebsites:\n  - !include {include}\n")
    with pytest.raises(config.ConfigError) as err:
        config.parse(main, {})
    assert str(err.value.problems[0]) == (
        f"{tree}/main.yaml:3:5: websites[0]: " + message.format(tree=tree)
    )
