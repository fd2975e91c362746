"""The configuration reader is bounded and never tracebacks: each hostile or broken file
gets ``FILE:LINE:COL: message`` lines and exit 2 from ``tocsin config check``, quickly,
and includes stay in the configuration's directory tree."""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import pytest

from bench.common import ROOT, write_config
from configuration import config as configuration
from configuration import yamlsource
from configuration.reader import plain
from tests.test_config_cli import _tocsin

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.+)$")
GENERAL = "general: {frequency: 1m}\n"
EXAMPLES_ENV = {
    "EXAMPLE_HOST": "status.example.org:443",
    "SMTP_HOST": "mail.example.org:25",
    "IMAP_HOST": "mail.example.org:143",
    "POP3_HOST": "mail.example.org:110",
    "DNS_RESOLVER": "192.0.2.53:53",
    "WS_HOST": "ws.example.org:80",
    "WSS_HOST": "ws.example.org:443",
    "RDAP_SERVER": "https://rdap.example.org/rdap/",
}


def check(main: Path, **env: str) -> tuple[int, list[re.Match[str]], str]:
    done = _tocsin("config", "check", str(main), **env)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    matches = [LINE.match(line) for line in lines]
    assert lines and all(matches), done.stderr
    return done.returncode, [m for m in matches if m], done.stderr


def billion_laughs(tmp: Path) -> tuple[Path, str]:
    levels = [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    for i in range(1, 10):
        levels.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    main = tmp / "laughs.yaml"
    main.write_text("\n".join(levels) + "\n")
    return main, f"more than {yamlsource.MAX_VALUES} values once aliases are expanded"


def include_fan_out(tmp: Path) -> tuple[Path, str]:
    for i in range(25):
        (tmp / f"f{i}.yaml").write_text(f"- !include f{i + 1}.yaml\n- !include f{i + 1}.yaml\n")
    (tmp / "f25.yaml").write_text("[]\n")
    main = tmp / "main.yaml"
    main.write_text(GENERAL + "websites: !include f0.yaml\n")
    return main, f"more than {yamlsource.MAX_FILES} files included"


def deep(tmp: Path) -> tuple[Path, str]:
    main = tmp / "deep.yaml"
    main.write_text(GENERAL + "websites: " + "[" * 600 + "]" * 600 + "\n")
    return main, f"nested deeper than {yamlsource.MAX_DEPTH} levels"


def deep_blocks(tmp: Path) -> tuple[Path, str]:
    main = tmp / "deep.yaml"
    main.write_text(GENERAL + "".join(" " * i + f"k{i}:\n" for i in range(700)))
    return main, f"nested deeper than {yamlsource.MAX_DEPTH} levels"


def large(tmp: Path) -> tuple[Path, str]:
    main = tmp / "large.yaml"
    main.write_text(GENERAL + "# " + "x" * (yamlsource.MAX_FILE_BYTES + 10) + "\n")
    return main, f"is larger than {yamlsource.MAX_FILE_BYTES // 2**20} MiB"


def not_utf8(tmp: Path) -> tuple[Path, str]:
    main = tmp / "latin1.yaml"
    main.write_bytes(GENERAL.encode() + "websites: []\n# caf\xe9\n".encode("latin-1"))
    return main, "not UTF-8 text (byte 0xe9)"


def nul(tmp: Path) -> tuple[Path, str]:
    main = tmp / "nul.yaml"
    main.write_text(GENERAL + "websites: [a\x00b]\n")
    return main, "character '\\x00' not allowed"


def self_alias(tmp: Path) -> tuple[Path, str]:
    main = tmp / "self.yaml"
    main.write_text(GENERAL + "websites: &w [*w]\n")
    return main, "an alias refers to the value it is in"


def alias_chain(tmp: Path) -> tuple[Path, str]:
    """Each anchor one level deeper than the last: 20 lines, 1,000 levels once expanded."""
    lines = [GENERAL.strip(), "a0: &a0 [x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 1000)]
    main = tmp / "chain.yaml"
    main.write_text("\n".join(lines) + "\nwebsites: []\n")
    return main, f"nested deeper than {yamlsource.MAX_DEPTH} levels once aliases are expanded"


def unknown_tag(tmp: Path) -> tuple[Path, str]:
    main = tmp / "tag.yaml"
    main.write_text(GENERAL + "websites: !python/object bar\n")
    return main, "unknown tag"


def bad_tagged_value(tmp: Path) -> tuple[Path, str]:
    main = tmp / "tag.yaml"
    main.write_text(GENERAL + "websites: !!int twelve\n")
    return main, "not a valid int"


def include_bytes(tmp: Path) -> tuple[Path, str]:
    """Files each under the size bound, together over the read's."""
    big = "# " + "x" * (yamlsource.MAX_FILE_BYTES - 10) + "\n[]\n"
    for i in range(yamlsource.MAX_READ_BYTES // yamlsource.MAX_FILE_BYTES + 1):
        (tmp / f"part{i}.yaml").write_text(big)
    main = tmp / "main.yaml"
    main.write_text(GENERAL + "websites: !include part*.yaml\n")
    return main, f"files are larger than {yamlsource.MAX_READ_BYTES // 2**20} MiB"


@pytest.mark.parametrize(
    ("make", "where"),
    [
        pytest.param(billion_laughs, None, id="billion-laughs"),
        pytest.param(include_fan_out, None, id="include-fan-out"),
        pytest.param(deep, (2, 74), id="nesting-flow"),
        pytest.param(deep_blocks, (66, 65), id="nesting-blocks"),
        pytest.param(large, (1, 1), id="file-size"),
        pytest.param(not_utf8, (3, 6), id="non-utf8"),
        pytest.param(nul, (2, 13), id="nul"),
        pytest.param(self_alias, (2, 11), id="self-alias"),
        pytest.param(alias_chain, (64, 12), id="alias-chain"),
        pytest.param(unknown_tag, (2, 11), id="unknown-tag"),
        pytest.param(bad_tagged_value, (2, 11), id="bad-tagged-value"),
        pytest.param(include_bytes, (2, 11), id="include-bytes"),
    ],
)
def test_hostile_files_get_a_located_error_and_exit_2(tmp_path: Path, make, where):
    main, message = make(tmp_path)
    code, lines, err = check(main)
    assert code == 2, err
    found = [m for m in lines if message in m["rest"]]
    assert found, err
    if where:
        assert (int(found[0]["line"]), int(found[0]["col"])) == where, err


SECRET = "root:$6$not-for-your-eyes:19000:0:99999:7:::"


@pytest.mark.parametrize("target", ["absolute", "dotdot", "symlink", "glob"])
def test_includes_stay_in_the_configuration_tree(tmp_path: Path, target: str):
    conf, outside = tmp_path / "conf", tmp_path / "secret"
    conf.mkdir()
    outside.mkdir()
    (outside / "shadow.yaml").write_text(SECRET + "\n")
    include = {
        "absolute": str(outside / "shadow.yaml"),
        "dotdot": "../secret/shadow.yaml",
        "symlink": "link.yaml",
        "glob": "../secret/*.yaml",
    }[target]
    (conf / "link.yaml").symlink_to(outside / "shadow.yaml")
    main = conf / "main.yaml"
    main.write_text(GENERAL + f"websites: !include {include}\n")
    code, lines, err = check(main)
    assert code == 2
    assert "outside the configuration's directory" in err and "not-for-your-eyes" not in err
    assert (lines[0]["file"], lines[0]["line"], lines[0]["col"]) == (str(main), "2", "11")
    # An explicit option widens the tree: the file is then read (and refused as a website
    # list, without quoting it).
    code, _, err = check(main, TOCSIN_CONFIG_INCLUDE_DIRS=str(outside))
    assert code == 2 and "outside" not in err and "not-for-your-eyes" not in err


def test_a_billion_laughs_is_refused_before_anything_is_expanded(tmp_path: Path):
    """Sizes are counted per anchor, so the refusal costs what the file's few hundred bytes
    cost, not the millions of values it stands for (a bound on memory, not on time)."""
    main, message = billion_laughs(tmp_path)
    tracemalloc.start()
    try:
        _, problems = yamlsource.read(main, env={})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [str(p) for p in problems] == [f"{main}:7:20: l6[2]: {message}"]
    assert peak < 4_000_000, peak


def test_reading_a_large_configuration_peaks_at_a_bounded_size_per_task(tmp_path: Path):
    """The read of 10,000 tasks peaks under 800 B of Python objects per task (1.7 kB while
    every value kept its place, 4.9 kB when PyYAML's composer built a tree of nodes first):
    the scheduler's start peaks at its read."""
    main = write_config(tmp_path / "large.yaml", "http://127.0.0.1:9", 5_000, "1m")
    tracemalloc.start()
    try:
        cfg = configuration.parse(main, env={})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(cfg.tasks) == 10_000
    assert peak < 10_000 * 800, peak


def test_a_read_without_places_shares_alike_values_and_reads_the_same(tmp_path: Path):
    main = write_config(tmp_path / "small.yaml", "http://127.0.0.1:9", 5, "1m")
    lean, _ = yamlsource.read(main, env={}, positions=False)
    full, _ = yamlsource.read(main, env={})
    assert plain(lean) == plain(full)
    paths = lean.value["websites"].value[0].value["paths"].value
    # A value holding another is shared once what it holds was met twice.
    assert paths[3].value["checks"] is paths[4].value["checks"]
    assert paths[3].value["path"] != paths[4].value["path"]
    # A configuration read without places (nothing to report) is the one read with them.
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        cfg = configuration.parse(example, EXAMPLES_ENV)
        assert cfg.tasks and not cfg.warnings
        assert cfg == configuration._parse(example, EXAMPLES_ENV, positions=True)


def test_a_problem_found_without_places_is_reported_with_its_place(tmp_path: Path):
    main = tmp_path / "bad.yaml"
    main.write_text(
        GENERAL + "websites:\n  - domain: http://127.0.0.1:9\n    paths:\n"
        "      - path: /a\n        checks: [status-is: 200]\n"
        "      - path: /b\n        checks: [status-is: 200]\n        colour: red\n"
    )
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.parse(main, {})
    assert str(refused.value) == f"{main}:9:9: websites[0].paths[1].colour: unknown key"
