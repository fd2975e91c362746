"""Differential test: Argos 0.10.3's own schema and task builder against Tocsin's parser.

Every file of the corpus (Argos's example with its ``methode:`` typo fixed, Argos's
test configuration, and the edge cases below, which use every key of
``argos/schemas/config.py``) is read by Argos itself (tests/argos/argos_tasks.py,
run in Argos's venv) and by Tocsin; both must accept it and make the same tasks:
URL, method, request data, check, expected value, IP version, and the scheduling
each task carries (frequency, recheck delay, retries before a notification).

Expected values are compared by meaning: Argos keeps them as the strings its
checks decode at run time; they are decoded the same way and put in the normal
form Tocsin's parser gives (sorted status lists, lower-case header names, …).

The files Argos accepts and Tocsin refuses on purpose are in ``REFUSED``, each
with the reason (a typo or a value Argos silently misreads) and the line named.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest

from checks import CATALOGUE
from checks.probe import request_body
from configuration import config
from events.types import RequestData
from services.notifier.settings import Target, per_severity
from tests.argos_support import argos_bin, argos_example, argos_tasks

CORPUS = Path(__file__).parent / "argos" / "corpus"

GENERAL = """\
general:
  db: {url: "postgresql://argos:argos@localhost/argos"}
  cookie_secret: "s3cret"
  frequency: "5m"
  alerts:
    ok: [local]
    warning: [local]
    critical: [local]
    unknown: [local]
    no_agent: [local]
  apprise:
    team: ["json://localhost:1/team"]
    john: ["json://localhost:1/john"]
"""
TAIL = """\
service:
  secrets: ["tok-1"]
ssl:
  thresholds:
    - "1d": critical
    - "5d": warning
recurring_tasks:
  max_results_age: "1d"
  max_lock_seconds: 100
  time_without_agent: 5
"""


def _file(websites: str, general_extra: str = "") -> str:
    return GENERAL + textwrap.indent(textwrap.dedent(general_extra), "  ") + TAIL + websites


EVERY_GENERAL_KEY = _file(
    """\
websites:
  - domain: "https://example.org"
    paths:
      - path: "/"
        checks: [status-is: 200]
""",
    """\
env: dev
session_duration: "2d"
remember_me_duration: "1M"
unauthenticated_access: dashboard
ldap:
  uri: "ldap://127.0.0.1:3389"
  user_tree: "ou=users,dc=example,dc=org"
  bind_dn: "uid=reader,ou=users,dc=example,dc=org"
  bind_pwd: "secr3t"
  user_attr: uid
  user_filter: "(!(uid=reader))"
recheck_delay: "1m"
retry_before_notification: 2
ipv4: true
ipv6: false
root_path: "/argos"
mail:
  mailfrom: no-reply@example.org
  host: 127.0.0.1
  port: 2525
  ssl: false
  starttls: true
  auth: {login: foo, password: bar}
  addresses: [ops@example.org]
gotify:
  - url: https://gotify.example.org
    tokens: [abc, def]
""",
).replace(
    'db: {url: "postgresql://argos:argos@localhost/argos"}',
    'db: {url: "postgresql://argos:argos@localhost/argos", pool_size: 5, max_overflow: 2}',
)

EVERY_WEBSITE_KEY = _file("""\
websites:
  - domain: "https://a.example.org"
    ipv4: false
    ipv6: true
    frequency: "20m"
    recheck_delay: "5m"
    retry_before_notification: 3
    add_alerts_recipients: ["apprise:team", "local"]
    paths:
      - path: "/x"
        method: "HEAD"
        checks: [status-is: 204]
  - domain: "https://b.example.org/"
    overwrite_alerts_recipients: ["apprise:john"]
    paths:
      - path: "relative"
        checks: [status-is: 200]
""")

IP_COMBOS = _file(
    """\
websites:
  - domain: "https://inherit.example.org"
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://v4.example.org"
    ipv4: true
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://v6.example.org"
    ipv6: true
    ipv4: false
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://both.example.org"
    ipv4: true
    ipv6: true
    paths: [{path: "/", checks: [status-is: 200]}]
""",
    "ipv6: false\n",
)

ONLY_V4_SITE = _file("""\
websites:
  - domain: "https://example.org"
    ipv6: false
    paths: [{path: "/", checks: [status-is: 200]}]
""")

REQUEST_DATA = _file("""\
websites:
  - domain: "https://example.org"
    paths:
      - path: "/json-mapping"
        method: POST
        request_data: {data: {login: admin, password: pw}, is_json: true}
        checks: [status-is: 200]
      - path: "/form-mapping"
        method: POST
        request_data: {data: {login: admin, n: 3, ok: true, tags: [a, b]}}
        checks: [status-is: 200]
      - path: "/json-text"
        method: PUT
        request_data: {data: '{"a": 1}', is_json: true}
        checks: [status-is: 200]
      - path: "/raw-text"
        method: PATCH
        request_data: {data: "a=1&b=2", is_json: false}
        checks: [status-is: 200]
      - path: "/json-list"
        method: POST
        request_data: {data: [1, {"x": null}], is_json: true}
        checks: [status-is: 200]
      - path: "/json-nested"
        method: POST
        request_data: {data: {a: {b: [1, 2]}}, is_json: true, headers: {X-A: "1"}}
        checks: [status-is: 200]
      - path: "/headers-only"
        request_data: {headers: {Authorization: "Bearer foo", X-Two: "2"}}
        checks: [status-is: 200]
      - path: "/empty"
        method: DELETE
        request_data: {}
        checks: [status-is: 200]
      - path: "/number"
        method: POST
        request_data: {data: 42}
        checks: [status-is: 200]
""")

METHODS_AND_CHECKS = _file("""\
websites:
  - domain: "https://example.org"
    paths:
      - path: "/get"
        checks:
          - status-is: 200
          - status-is: "201"
          - status-in: [302, 200, 200]
          - body-contains: "hello"
          - body-like: "h.llo [0-9]+"
          - headers-contain: [Content-Type, x-a]
          - headers-have: {Content-Type: "text/html"}
          - headers-like: {server: "nginx.*"}
          - json-contains: [/a/0, /b]
          - json-has: {/a: 1, /b: "x", /c: false}
          - json-like: {/v: "1\\\\..*"}
          - json-is: '{"b": [1, 2], "a": null}'
          - json-is: {"a": 1}
          - ssl-certificate-expiration: on-check
          - http-to-https: true
          - http-to-https: 302
          - http-to-https: {start: 301, stop: 303}
          - http-to-https: [308, 301]
      - {path: "/options", method: OPTIONS, checks: [status-is: 200]}
      - {path: "/trace", method: TRACE, checks: [status-is: 200]}
      - {path: "/connect", method: CONNECT, checks: [status-is: 200]}
      - {path: "/head", method: HEAD, checks: [status-is: 200]}
      - {path: "/get", method: GET, checks: [status-is: 200]}
""")

DURATIONS = _file(
    """\
websites:
  - domain: "https://hours.example.org"
    frequency: "1h30m"
    recheck_delay: "2 minutes"
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://words.example.org"
    frequency: "2 hours and 5 minutes"
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://days.example.org"
    frequency: "1d"
    recheck_delay: "1h"
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://weeks.example.org"
    frequency: "1w"
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://months.example.org"
    frequency: "1M"
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://years.example.org"
    frequency: "1y"
    paths: [{path: "/", checks: [status-is: 200]}]
  - domain: "https://seconds.example.org"
    frequency: "90s"
    recheck_delay: "30s"
    paths: [{path: "/", checks: [status-is: 200]}]
""",
    'session_duration: "1w"\nremember_me_duration: "1y"\n',
)

DUPLICATES = _file("""\
websites:
  - domain: "https://example.org"
    paths:
      - {path: "/", checks: [status-is: 200, status-is: 200]}
      - {path: "/", checks: [body-contains: x]}
  - domain: "https://example.org/"
    paths:
      - {path: "", checks: [status-is: 200]}
""")

INCLUDE_LIST = GENERAL + TAIL + "websites: !include sites.yaml\n"
INCLUDE_GLOB = GENERAL + TAIL + "websites: !include domains.d/*.yaml\n"
INCLUDE_ITEMS = GENERAL + TAIL + "websites:\n  - !include domains.d/a.yaml\n  - !include one.yaml\n"
INCLUDED = {
    "sites.yaml": """\
- domain: "https://one.example.org"
  paths: [{path: "/", checks: [status-is: 200]}]
- domain: "https://two.example.org"
  ipv6: false
  paths: [{path: "/two", checks: [body-contains: two]}]
""",
    "one.yaml": 'domain: "https://one.example.org"\npaths: [{path: /, checks: [status-is: 200]}]',
    "domains.d/a.yaml": 'domain: "https://a.example.org"\n'
    "paths: [{path: /a, checks: [body-like: a]}]",
    "domains.d/b.yaml": 'domain: "https://b.example.org"\nfrequency: 1m\n'
    "paths: [{path: /b, checks: [status-is: 200]}]",
}

SAME = {
    "every-general-key": EVERY_GENERAL_KEY,
    "every-website-key": EVERY_WEBSITE_KEY,
    "ip-combinations": IP_COMBOS,
    "only-v4-site": ONLY_V4_SITE,
    "request-data-shapes": REQUEST_DATA,
    "methods-and-checks": METHODS_AND_CHECKS,
    "durations": DURATIONS,
    "duplicates": DUPLICATES,
    "include-file": INCLUDE_LIST,
    "include-glob": INCLUDE_GLOB,
    "include-items": INCLUDE_ITEMS,
}


ONE_PATH = '    paths: [{path: "/", checks: [status-is: 200]}]\n'


def _site(body: str) -> str:
    return _file("websites:\n  - domain: https://example.org\n" + body)


#: Argos accepts these; Tocsin refuses them, naming the place: each is a typo or a value that
#: Argos silently reads as something else. name: (file, (text of the line, the value's text
#: in it: where the problem is reported), the key path and the start of the message)
REFUSED = {
    "methode-typo": (
        _site(
            '    paths:\n      - path: "/"\n        methode: POST\n'
            "        checks: [status-is: 200]\n"
        ),
        ("methode: POST", "methode"),
        "websites[0].paths[0].methode: unknown key (did you mean 'method'?)",
    ),
    "http-to-https-false": (
        _site('    paths:\n      - path: "/"\n        checks: [http-to-https: false]\n'),
        ("http-to-https: false", "false"),
        "websites[0].paths[0].checks[0].http-to-https: expected true, a status code",
    ),
    "http-to-https-not-a-redirect": (
        _site('    paths:\n      - path: "/"\n        checks: [http-to-https: 200]\n'),
        ("http-to-https: 200", "200"),
        "websites[0].paths[0].checks[0].http-to-https: 200 is not a redirection status",
    ),
    "status-in-as-text": (
        _site('    paths:\n      - path: "/"\n        checks: [status-in: ["200"]]\n'),
        ("status-in:", '["200"]'),
        "websites[0].paths[0].checks[0].status-in: expected an HTTP status code",
    ),
    "unknown-apprise-group": (
        _site('    add_alerts_recipients: ["apprise:nobody"]\n' + ONE_PATH),
        ("apprise:nobody", '"apprise:nobody"'),
        "websites[0].add_alerts_recipients[0]: unknown apprise group 'nobody'",
    ),
    "mail-without-mail-section": (
        _site("    overwrite_alerts_recipients: [mail]\n" + ONE_PATH),
        ("overwrite_alerts_recipients", "mail"),
        "websites[0].overwrite_alerts_recipients[0]: channel mail needs a general.mail",
    ),
    "duration-without-unit": (
        _site('    frequency: "5"\n    paths: [{path: "/", checks: [status-is: 200]}]\n'),
        ('frequency: "5"', '"5"'),
        "websites[0].frequency: expected a duration such as",
    ),
    "form-list": (
        _site(
            '    paths:\n      - path: "/"\n        request_data: {data: [1, 2]}\n'
            "        checks: [status-is: 200]\n"
        ),
        ("request_data", "[1, 2]"),
        "websites[0].paths[0].request_data.data: a list cannot be sent as a form",
    ),
    "recheck-not-shorter": (
        _site('    frequency: "5m"\n    recheck_delay: "5m"\n' + ONE_PATH),
        ('recheck_delay: "5m"', '"5m"'),
        "websites[0].recheck_delay: recheck_delay (300s) must be shorter than frequency",
    ),
    "no-ip-version": (
        _site(
            '    ipv4: false\n    ipv6: false\n    paths: [{path: "/", checks: [status-is: 200]}]\n'
        ),
        ("ipv6: false", "false"),
        "websites[0]: ipv4 and ipv6 are both false: nothing would be checked",
    ),
}


def _normal(check: str, value: Any) -> str:
    """A check's expected value in Tocsin's normal form, as comparable text."""
    return json.dumps(msgspec.to_builtins(CATALOGUE[check].parse(value)), sort_keys=True)


def _argos_expected(check: str, expected: str) -> Any:
    """What Argos's check classes make of the stored string (argos/checks/checks.py)."""
    if check == "http-to-https":
        spec = json.loads(expected)
        if "value" in spec:
            return spec["value"]
        if "list" in spec:
            return spec["list"]
        return {"start": spec["range"][0], "stop": spec["range"][1]}
    if check == "status-is":
        return int(expected)
    if check in ("body-contains", "body-like", "ssl-certificate-expiration"):
        return expected
    return json.loads(expected)


def _request_data(data: Any, is_json: bool, headers: dict[str, str] | None) -> str:
    return json.dumps([data, is_json, headers or {}], sort_keys=True)


def _minutes(seconds: float | None) -> float | None:
    # Argos keeps minutes rounded to two decimals (durations_nlp's to_minutes).
    return None if seconds is None else round(seconds / 60, 2)


def argos_set(tasks: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    out = set()
    for t in tasks:
        rd = t["request_data"]
        data = None if rd is None else json.loads(rd)
        out.add(
            (
                t["url"],
                t["method"],
                None
                if data is None
                else _request_data(data["data"], data["json"], data["headers"]),
                t["check"],
                _normal(t["check"], _argos_expected(t["check"], t["expected"])),
                int(t["ip_version"]),
                t["frequency"],
                t["recheck_delay"],
                t["retry_before_notification"],
            )
        )
    return out


def tocsin_set(cfg: config.Config) -> set[tuple[Any, ...]]:
    out = set()
    for t in cfg.tasks.values():
        rd = t.request_data
        out.add(
            (
                t.url,
                t.method,
                None if rd is None else _request_data(rd.data, rd.is_json, rd.headers),
                t.check,
                json.dumps(msgspec.to_builtins(t.expected), sort_keys=True),
                t.ip_version,
                _minutes(t.frequency),
                _minutes(t.recheck_delay),
                t.retry_before_notification,
            )
        )
    return out


def _write(tmp_path: Path, name: str, text: str) -> Path:
    for rel, body in INCLUDED.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _argos_example_fixed() -> str:
    """Argos's example, its typo fixed and one agent token given, as its comment asks:
    without a token Argos itself refuses the file (service.secrets is not a list)."""
    text = argos_example()
    assert "methode: " in text and "    # - secret_token\n" in text
    return text.replace("methode: ", "method: ").replace(
        "    # - secret_token\n", "    - secret_token\n"
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("corpus")
    files = {name: _write(tmp, name, text) for name, text in SAME.items()}
    files["argos-example"] = _write(tmp, "argos-example", _argos_example_fixed())
    files["argos-tests-config"] = CORPUS / "argos-tests-config.yaml"
    return files


@pytest.fixture(scope="module")
def argos_view(corpus: dict[str, Path]) -> dict[str, dict[str, Any]]:
    found = argos_tasks(list(corpus.values()))
    return {name: found[str(path)] for name, path in corpus.items()}


@pytest.mark.parametrize("name", [*SAME, "argos-example", "argos-tests-config"])
def test_same_tasks_as_argos(
    name: str, corpus: dict[str, Path], argos_view: dict[str, dict[str, Any]]
) -> None:
    argos = argos_view[name]
    assert "error" not in argos, argos.get("error")
    assert argos["tasks"], "a case that makes no task compares nothing"
    mine = tocsin_set(config.parse(corpus[name], {}))
    theirs = argos_set(argos["tasks"])
    assert sorted(mine - theirs, key=str) == [] and sorted(theirs - mine, key=str) == []
    assert len(mine) == len(argos["tasks"])


def test_argos_example_gives_argos_tasks(
    corpus: dict[str, Path], argos_view: dict[str, dict[str, Any]]
) -> None:
    """The acceptance case: the example's two websites, five paths and its request data
    (a mapping sent as JSON) come out as Argos makes them."""
    tasks = config.parse(corpus["argos-example"], {}).tasks.values()
    sent = {json.dumps(t.request_data.data) for t in tasks if t.request_data is not None}
    assert len(argos_view["argos-example"]["tasks"]) == len(tasks) == 34
    assert sent == {json.dumps({"login": "admin", "password": "my-password"})}


def test_argos_example_with_its_typo_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config-example.yaml"
    text = argos_example().replace("    # - secret_token\n", "    - secret_token\n")
    path.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "methode:" in s)
    with pytest.raises(config.ConfigError) as err:
        config.parse(path, {})
    assert [str(p) for p in err.value.problems] == [
        f"{path}:{line}:9: websites[0].paths[1].methode: unknown key (did you mean 'method'?)"
    ]
    assert argos_tasks([path])[str(path)]["tasks"], "Argos runs it (as a GET)"


@pytest.fixture(scope="module")
def refused_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("refused")
    return {name: _write(tmp, name, case[0]) for name, case in REFUSED.items()}


@pytest.fixture(scope="module")
def argos_on_refused(refused_files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    found = argos_tasks(list(refused_files.values()))
    return {name: found[str(path)] for name, path in refused_files.items()}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_on_purpose_though_argos_accepts(
    name: str, refused_files: dict[str, Path], argos_on_refused: dict[str, dict[str, Any]]
) -> None:
    assert "error" not in argos_on_refused[name], "Argos accepts it: the case is a difference"
    with pytest.raises(config.ConfigError) as err:
        config.parse(refused_files[name], {})
    text, (line_text, value), message = REFUSED[name]
    line, col = next(
        (n, t.index(value, len(t) - len(t.lstrip())) + 1)
        for n, t in enumerate(text.splitlines(), 1)
        if line_text in t
    )
    shown = [str(p) for p in err.value.problems]
    assert len(shown) == 1, shown
    assert shown[0].startswith(f"{refused_files[name]}:{line}:{col}: {message}"), shown


BODIES = [
    RequestData(data={"login": "admin", "password": "p w&"}, is_json=False),
    RequestData(data={"n": 3, "ok": True, "none": None, "tags": ["a", "b"]}, is_json=False),
    RequestData(data="a=1&b=2", is_json=False),
    RequestData(data={"login": "admin", "nested": {"a": [1, 2]}}, is_json=True),
    RequestData(data=[1, {"x": None}], is_json=True),
]


def test_request_bodies_are_the_ones_argos_agent_sends() -> None:
    """Argos's agent hands ``data`` to httpx (``json=`` with is_json, ``data=`` otherwise):
    the bytes and content type httpx builds there are the ones Tocsin's prober sends. (A
    string with is_json is the one difference: Tocsin sends it as the JSON text it is.)"""
    script = (
        "import json, sys, httpx\n"
        "for data, is_json in json.load(sys.stdin):\n"
        "    kw = {'json': data} if is_json else {'data': data}\n"
        "    r = httpx.Request('POST', 'http://x/', **kw)\n"
        "    print(json.dumps([r.read().decode(), r.headers.get('content-type')]))\n"
    )
    argos = subprocess.run(
        [str(argos_bin() / "python"), "-W", "ignore", "-c", script],
        input=json.dumps([[b.data, b.is_json] for b in BODIES]),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for rd, line in zip(BODIES, argos, strict=True):
        body, content_type = json.loads(line)
        mine = request_body(rd)
        assert mine is not None
        if rd.is_json:  # httpx writes compact JSON; the same document either way
            assert json.loads(mine[0]) == json.loads(body) and mine[1] == content_type
        else:
            assert (mine[0].decode(), mine[1]) == (body, content_type)


def test_a_website_list_of_recipients_applies_to_every_task_severity() -> None:
    routing, mail = per_severity(["apprise:team", "local"], "websites[0].add_alerts_recipients")
    assert mail is None
    assert routing == {
        sev: [Target("apprise:team"), Target("local")]
        for sev in ("ok", "warning", "critical", "unknown")
    }
