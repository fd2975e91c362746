"""What Argos 0.10.3 accepts by coercing or defaulting, Tocsin accepts and reads the same way.

Argos itself is the oracle (tests/argos/argos_tasks.py, its schema and task builder in its
own venv): URLs joined by its ``urljoin`` on pydantic's normal form of ``domain``, numbers
where text is expected, ``mail`` defaults, ``recurring_tasks`` floors, an ``!include`` glob
matching nothing, YAML merge keys.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from configuration import config
from tests.argos_support import argos_tasks
from tests.test_argos_config import GENERAL, TAIL, _file, _write, argos_set, tocsin_set

#: (domain, path): the URL of the task is Argos's, whatever it is.
URL_CASES = [
    pytest.param("https://example.org", "/", id="bare-domain-root"),
    pytest.param("https://example.org", "/health", id="bare-domain-path"),
    pytest.param("https://example.org/", "", id="slash-domain-empty-path"),
    pytest.param("https://example.org/", "relative", id="slash-domain-relative"),
    pytest.param("https://example.org/app/", "/root", id="domain-path-absolute-path"),
    pytest.param("https://example.org/app/", "sub", id="domain-path-relative"),
    pytest.param("https://example.org/app/", "", id="domain-path-empty-path"),
    pytest.param("https://example.org/app", "sub", id="domain-path-no-slash-relative"),
    pytest.param("https://example.org/app/", "../up", id="dot-dot"),
    pytest.param("https://example.org/app/", "?q=1", id="query-only"),
    pytest.param("https://example.org", "//cdn.example.net/x", id="network-path"),
    pytest.param("https://example.org", "https://other.example.org/x", id="full-url-path"),
    pytest.param("https://Example.ORG", "/", id="host-upper-case"),
    pytest.param("HTTPS://example.org", "/x", id="scheme-upper-case"),
    pytest.param("https://example.org:443", "/x", id="default-port-https"),
    pytest.param("http://example.org:80/", "/x", id="default-port-http"),
    pytest.param("https://example.org:8443", "/x", id="other-port"),
    pytest.param("https://café.example", "/", id="idn"),
    pytest.param("https://CAFÉ.example", "/", id="idn-upper-case"),
    pytest.param("https://straße.example", "/", id="idn-sharp-s"),
    pytest.param("https://example.org.", "/", id="trailing-dot"),
    pytest.param("https://[0:0:0:0:0:0:0:1]:8443", "/", id="ipv6-long-form"),
    pytest.param("https://example.org/é/", "x", id="non-ascii-domain-path"),
]


def _one_site(domain: str, path: str) -> str:
    # One IP version: an IPv6 address is checked over IPv6 only.
    version = "ipv4: false" if "[" in domain else "ipv6: false"
    return _file(
        f"websites:\n  - domain: {domain!r}\n    {version}\n"
        f"    paths: [{{path: {path!r}, checks: [status-is: 200]}}]\n"
    )


@pytest.fixture(scope="module")
def url_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("urls")
    return {
        case.id or "": _write(tmp, case.id or "", _one_site(*case.values))  # type: ignore[arg-type]
        for case in URL_CASES
    }


@pytest.fixture(scope="module")
def argos_urls(url_files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    found = argos_tasks(list(url_files.values()))
    return {name: found[str(path)] for name, path in url_files.items()}


@pytest.mark.parametrize(("domain", "path"), URL_CASES)
def test_task_url_is_the_one_argos_makes(
    domain: str,
    path: str,
    request: pytest.FixtureRequest,
    url_files: dict[str, Path],
    argos_urls: dict[str, dict[str, Any]],
) -> None:
    name = request.node.callspec.id
    argos = argos_urls[name]
    assert "error" not in argos, argos.get("error")
    mine = config.parse(url_files[name], {}).tasks.values()
    assert [t.url for t in mine] == [t["url"] for t in argos["tasks"]]


def test_common_urls_and_task_ids_are_unchanged(tmp_path: Path) -> None:
    """A domain without a path and paths from its root: the URLs and ids of before, which the
    log and the read models hold."""
    path = tmp_path / "pin.yaml"
    path.write_text(
        textwrap.dedent("""\
        general: {frequency: 5m}
        websites:
          - domain: https://example.org
            paths:
              - {path: /, checks: [status-is: 200]}
              - {path: /health, checks: [body-contains: ok]}
          - domain: https://example.net/
            ipv6: false
            paths:
              - {path: /a/b, checks: [status-is: 204]}
        """)
    )
    got = sorted(
        (t.url, t.check, t.ip_version, t.id, t.group) for t in config.parse(path, {}).tasks.values()
    )
    assert got == [
        ("https://example.net/a/b", "status-is", 4, "484358f6a66494f0", "0bff5b88a71050b5"),
        ("https://example.org/", "status-is", 4, "abdb13c1b0645743", "75fadee02a022e67"),
        ("https://example.org/", "status-is", 6, "13befdfce8f1b5b9", "57a809850653ac20"),
        ("https://example.org/health", "body-contains", 4, "a741b9be98de9dc7", "10d44312e14b48be"),
        ("https://example.org/health", "body-contains", 6, "bfbde3621dd76c11", "926f80590a6ad48e"),
    ]


def _checks(*checks: str) -> str:
    return _file(
        "websites:\n  - domain: https://example.org\n    paths:\n      - path: /\n"
        "        checks:\n" + "".join(f"          - {c}\n" for c in checks)
    )


MERGE_BASE = """\
websites:
  - &base
    domain: "https://a.example.org"
    frequency: "10m"
    paths: [{path: "/", checks: [status-is: 200]}]
"""

#: Files Argos accepts by coercing or defaulting a value: Tocsin makes the same tasks.
SAME = {
    "numbers-as-text": _checks(
        "body-contains: 42",
        "body-like: 404",
        "json-is: 7",
        "headers-like: {x-count: 5, x-ratio: 1.5}",
        "json-like: {/n: 3}",
    ),
    "mail-without-host-port-as-text": _checks("status-is: 200").replace(
        "  apprise:",
        "  mail:\n    mailfrom: no-reply@example.org\n    port: '2525'\n"
        "    addresses: [ops@example.org]\n  apprise:",
    ),
    "recurring-floors": _checks("status-is: 200")
    .replace("time_without_agent: 5", "time_without_agent: 0")
    .replace("max_lock_seconds: 100", "max_lock_seconds: 30"),
    "merge-key": GENERAL
    + TAIL
    + MERGE_BASE
    + """\
  - <<: *base
    domain: "https://b.example.org"
  - <<: [{ipv6: false, frequency: "1m"}, *base]
    domain: "https://c.example.org"
    frequency: "2m"
""",
}


@pytest.fixture(scope="module")
def same_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("same")
    return {name: _write(tmp, name, text) for name, text in SAME.items()}


@pytest.fixture(scope="module")
def argos_same(same_files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    found = argos_tasks(list(same_files.values()))
    return {name: found[str(path)] for name, path in same_files.items()}


@pytest.mark.parametrize("name", list(SAME))
def test_same_tasks_as_argos(
    name: str, same_files: dict[str, Path], argos_same: dict[str, dict[str, Any]]
) -> None:
    argos = argos_same[name]
    assert "error" not in argos, argos.get("error")
    assert argos["tasks"]
    mine = tocsin_set(config.parse(same_files[name], {}))
    assert sorted(mine, key=str) == sorted(argos_set(argos["tasks"]), key=str)


def test_mail_defaults_and_coercions_are_argos_s(same_files: dict[str, Path]) -> None:
    """Argos's ``Mail``: host 127.0.0.1, port 25 (a text of digits is the number)."""
    mail = config.parse(same_files["mail-without-host-port-as-text"], {}).general["mail"]
    assert (mail["host"], mail["port"]) == ("127.0.0.1", 2525)
    minimal = _checks("status-is: 200").replace(
        "  apprise:",
        "  mail:\n    mailfrom: a@example.org\n    addresses: [b@example.org]\n  apprise:",
    )
    path = _write(same_files["numbers-as-text"].parent, "mail-minimal", minimal)
    mail = config.parse(path, {}).general["mail"]
    assert mail == {
        "mailfrom": "a@example.org",
        "host": "127.0.0.1",
        "port": 25,
        "ssl": False,
        "starttls": False,
        "addresses": ["b@example.org"],
    }


def test_recurring_floors_are_argos_s(same_files: dict[str, Path]) -> None:
    """Argos's validators: time_without_agent under 1 minute is 5, max_lock_seconds up to 60
    is 100."""
    recurring = config.parse(same_files["recurring-floors"], {}).recurring
    assert recurring["time_without_agent"] == 300.0
    assert recurring["max_lock_seconds"] == 100


def test_merged_keys_are_reported_where_they_are_written(tmp_path: Path) -> None:
    text = (
        GENERAL
        + TAIL
        + MERGE_BASE.replace("status-is: 200", "status-is: 999")
        + ('  - <<: *base\n    domain: "https://b.example.org"\n  - <<: 42\n')
    )
    path = _write(tmp_path, "merge-bad", text)
    lines = text.splitlines()
    bad = next(n for n, t in enumerate(lines, 1) if "999" in t)
    merge = next(n for n, t in enumerate(lines, 1) if "<<: 42" in t)
    with pytest.raises(config.ConfigError) as err:
        config.parse(path, {})
    col = lines[bad - 1].index("999") + 1
    wrong = "status-is: expected an HTTP status code (100-599), got 999"
    assert [str(p) for p in err.value.problems] == [
        f"{path}:{bad}:{col}: websites[0].paths[0].checks[0].{wrong}",
        # websites[1]'s paths are the base's: the problem is where they are written.
        f"{path}:{bad}:{col}: websites[1].paths[0].checks[0].{wrong}",
        f"{path}:{merge}:5: websites[2].domain: required key is missing",
        f"{path}:{merge}:9: websites[2]: a merge key (<<) takes a mapping or a list of "
        "mappings, got int 42",
    ]


def test_glob_matching_no_file_is_no_website_with_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty-glob", GENERAL + TAIL + "websites: !include none.d/*.yaml\n")
    argos = argos_tasks([path])[str(path)]
    assert argos == {"tasks": []}
    cfg = config.parse(path, {})
    assert cfg.tasks == {}
    line = (GENERAL + TAIL).count("\n") + 1
    assert [str(w) for w in cfg.warnings] == [
        f"{path}:{line}:11: websites: warning: !include none.d/*.yaml: no file matches"
    ]
