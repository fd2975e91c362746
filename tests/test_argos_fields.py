"""Differential test, key by key: every key of Argos 0.10.3's schema (``argos/schemas/config.py``:
general, service, ssl, recurring_tasks, websites, paths, checks, mail, gotify, apprise) given
values of each kind pydantic coerces ("lax mode") or refuses, and the values Argos's own
validators (durations, floors) take or choke on.

Each file is one valid Argos file (tests/argos_fields.py) with one key changed; Argos itself
(tests/argos/argos_tasks.py, its schema and task builder in its own venv) and Tocsin read it:

- ``SAME``: both accept it, with the same tasks, or both refuse it, Tocsin naming the file,
  line, column and key;
- ``REFUSED``: Argos accepts it but misreads it (or its check fails on it at run time), and
  Tocsin refuses it on purpose, naming the place (docs/migrating-from-argos.md);
- ``BEYOND``: Argos refuses it and Tocsin accepts it, on purpose, each with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from configuration import config
from events.fields import MAX_SECONDS
from tests.argos_fields import OMIT, Rendered, render
from tests.argos_support import ArgosTasks
from tests.test_argos_config import argos_set, tocsin_set

Case = tuple[dict[str, object], str]  # (keys written and their values, why they differ)


def _each(keys: list[str], values: list[object], why: str = "") -> list[Case]:
    return [({key: value}, why) for key in keys for value in values]


GENERAL_RETRY = "general.retry_before_notification"
SITE_RETRY = "websites[0].retry_before_notification"
POOL = ["general.db.pool_size", "general.db.max_overflow"]
PORT = "general.mail.port"
INTS = [GENERAL_RETRY, SITE_RETRY, *POOL, PORT]
#: pydantic's int: a number without fraction or its text, refusing the rest.
INT_VALUES = ["2", '"2"', '" 2 "', '"+2"', "2.0", '"2.00"', '"2_000"', "2_000", "0x10", "010"]
INT_VALUES += ["1.0e+3", "2.5", '"2.5"', '"2."', '"yes"', '""', "[2]", '"0x10"', "1e3", ".inf"]
INT_VALUES += ["2001-01-01", "null", "0"]
BOOLS = ["general.ipv4", "general.ipv6", "websites[0].ipv4", "websites[0].ipv6"]
BOOLS += ["websites[0].paths[0].request_data.is_json"]
#: pydantic's bool: its words in any case, 1 and 0; not " yes ", 2 nor 0.5.
BOOL_VALUES = ["true", "false", "yes", "no", "on", "off", "y", "n", '"yes"', '"no"', '"True"']
BOOL_VALUES += ['"on"', '"OFF"', '"t"', '"f"', '"1"', '"0"', "1", "0", "1.0", "0.0", '"2"']
BOOL_VALUES += ['" yes "', "2", "0.5", '""', "[true]", "null"]
STRICT_BOOLS = ["general.mail.ssl", "general.mail.starttls"]
#: Durations Argos reads (durations_nlp) as Tocsin does, and ones both refuse.
DURATION_VALUES = ['"10m"', "10m", '"1h30m"', '"2 hours and 5 minutes"', '"10 m"', '" 10m "']
DURATION_VALUES += ['"10minutes"', '"3600s"', '"1_000m"', '"1d, 2h"', '"5min"', '"1.5 h"']
DURATION_VALUES += ['"1e3m"', "true", "2001-01-01", '"P1D"', '"10M"']
#: What Argos misreads in a duration: no unit (0), empty (0), "1h30" (the 30 dropped), zero,
#: negative, a list (0).
MISREAD_DURATIONS = ['"5"', '"1h30"', '"0m"', '"-5m"', "[10m]"]
GENERAL_FREQUENCY = "general.frequency"
SITE_FREQUENCY = "websites[0].frequency"
GENERAL_RECHECK = "general.recheck_delay"
SITE_RECHECK = "websites[0].recheck_delay"
SESSION = "general.session_duration"
REMEMBER = "general.remember_me_duration"
RESULTS_AGE = "recurring_tasks.max_results_age"
DURATIONS = [GENERAL_FREQUENCY, SITE_FREQUENCY, SESSION, REMEMBER, RESULTS_AGE]
#: Recheck delays under the frequencies of the file (5m in general, 1d on the website).
RECHECK_VALUES = ['"2m"', "2m", '"1m 30s"', '"90 seconds"', '" 2m "', '"1_0s"', '"5min"']
RECHECK_VALUES += ['"1.5 h"', "true", "2001-01-01"]
THRESHOLD = "ssl.thresholds[0]"
LOCK = "recurring_tasks.max_lock_seconds"
NO_AGENT = "recurring_tasks.time_without_agent"
CHECK = "websites[0].paths[0].checks[0]"
DATA = "websites[0].paths[0].request_data.data"
HEADERS = "websites[0].paths[0].request_data.headers"
NOT_TEXT = ["1", "1.5", "true", "null", "[a]", "{a: b}"]
#: Alerts naming no channel of the sections a case leaves out.
LOCAL_ONLY = {
    "general.alerts.warning": "[local]",
    "general.alerts.critical": "[local]",
    "websites[0].add_alerts_recipients": "[local]",
}

BOOL_AS_NUMBER = "pydantic reads true as 1 and false as 0: nobody writing a number means it"
EMPTY_TEXT = "an empty name, secret or address, which Argos passes on as it is"
MISREAD = "Argos reads it as something else (durations_nlp: 0, or a term dropped)"
EMPTY_SITE_KEY = "Argos takes 0, false or an empty text as unset: the general value"
CHECK_VALUE = "Argos's check cannot use it: it fails or never matches at run time"
ARGOS_NEEDS = "a section or key Argos needs for itself and Tocsin does not"
EMPTY_LIST = "a list key left empty is an empty list"
MINUTES = "a bare number is minutes (Argos before 0.10: session_duration: 10080)"
OVER_BOUND = "over the event log's bound (366 days for a duration, 64 bits for a number)"
#: The event log's bound on a duration (366 days): in seconds, in minutes.
BOUND_SECONDS, BOUND_MINUTES = int(MAX_SECONDS), int(MAX_SECONDS) // 60

SAME: list[Case] = [
    *_each(INTS, INT_VALUES),
    # A channel Argos does not know: it ignores it; Tocsin warns (tests/test_argos_alert_names.py).
    *_each(["general.alerts.ok", "websites[0].add_alerts_recipients"], ["[a]"]),
    *_each(POOL, ["-1"]),
    *_each([PORT], ["-1", "false", "65535"]),
    # Argos's database cannot hold it (an OverflowError making the tasks).
    *_each([SITE_RETRY], ["99999999999999999999"]),
    *_each(BOOLS, BOOL_VALUES),
    *_each(STRICT_BOOLS, ["true", "false", "yes", "off", '"yes"', '"true"', "1", "0", "null"]),
    *_each([GENERAL_FREQUENCY, SITE_FREQUENCY, RESULTS_AGE], DURATION_VALUES),
    *_each([SESSION, REMEMBER], [*DURATION_VALUES, '"90s"', "null"]),
    *_each([SESSION], ["10.5"]),  # Argos: no number; Tocsin: minutes, but whole ones
    *_each([GENERAL_FREQUENCY, RESULTS_AGE], ["null"]),
    *_each([SITE_RECHECK], ["null", OMIT]),
    # The general frequency then, 5m: a shorter recheck delay.
    *[({SITE_FREQUENCY: value, SITE_RECHECK: '"2m"'}, "") for value in ("null", OMIT)],
    *_each([GENERAL_RECHECK, SITE_RECHECK], RECHECK_VALUES),
    # Argos's general recheck_delay: any empty value is no recheck delay.
    *_each([GENERAL_RECHECK], ["null", "0", "false", '""', "[]", OMIT]),
    *_each([THRESHOLD], ['"1d": critical', '"2d": warning', '"1w": unknown', '"2M": warning']),
    *_each([THRESHOLD], ['"1d 1s": critical', '"1 day": critical', '"12h": warning']),
    *_each([THRESHOLD], ['"36h": warning', '"1M": warning', '"1d": ok', '"1d": Warning']),
    *_each([THRESHOLD], ['"5min": warning', '"1d"', "[1d, critical]", "{}", "5: warning"]),
    *_each([LOCK], ["100", "2", "-1", "0", "2.0", "2.5", "1.0e+3", ".nan", "100.5", '"100"']),
    *_each([LOCK], ["null", ".inf", "2001-01-01"]),
    # At the event log's bound: taken by both.
    *_each(DURATIONS, ['"366d"']),
    *_each([THRESHOLD], ['"366d": warning']),
    *_each([LOCK], [str(BOUND_SECONDS)]),
    *_each([NO_AGENT], [str(BOUND_MINUTES)]),
    *_each([NO_AGENT], ["5", "0", "-1", "2.0", "0.5", "2.5", '"5"', "null", "1.0e+3", "[5]"]),
    *_each(["general.env"], ["dev", "test", "production", "staging", "Production", "null", '""']),
    *_each(["general.unauthenticated_access"], ["dashboard", "all", "none", "Dashboard"]),
    *_each(["general.unauthenticated_access"], ["null", '""', "1"]),
    *_each(["general.cookie_secret", "general.ldap.uri", "general.mail.host"], NOT_TEXT),
    *_each(["general.root_path"], ['"/"', '""', *NOT_TEXT]),
    *_each(["general.ldap.user_tree", "general.ldap.user_attr"], [*NOT_TEXT, OMIT]),
    *_each(["general.ldap.uri"], [OMIT]),
    *_each([f"general.ldap.{k}" for k in ("bind_dn", "bind_pwd", "user_filter")], ['""', "1"]),
    *_each([f"general.ldap.{k}" for k in ("bind_dn", "bind_pwd", "user_filter")], ["null", OMIT]),
    *_each(["general.mail.mailfrom"], [*NOT_TEXT, OMIT]),
    *_each(["general.mail.host", "general.mail.port", "general.mail.ssl"], [OMIT]),
    *_each(["general.mail.auth.login", "general.mail.auth.password"], [*NOT_TEXT, OMIT]),
    *_each(["general.mail.addresses"], ["[]", '"ops@example.org"', "null", "[1]"]),
    *_each(["general.gotify[0].url"], ['"http://gotify.example.org:8080/"', '"text"']),
    *_each(["general.gotify[0].url"], ['"ftp://gotify.example.org"', *NOT_TEXT, OMIT]),
    *_each(["general.gotify[0].tokens"], ["[]", "null", "abc", "[1]", OMIT]),
    *_each(["general.apprise.team"], ["[]", '"json://localhost:1/team"', "[1]"]),
    *_each(["service.secrets"], ["[]", '"tok-1"', "[1]"]),
    *_each(["general.alerts.ok"], ["[]", "local", "[1]", "[local, local]"]),
    *_each(["websites[0].overwrite_alerts_recipients"], ["[]", "null", "local", "[1]", OMIT]),
    *_each(["websites[0].add_alerts_recipients"], ['["apprise:team", local]', "null", OMIT]),
    *_each(["websites[0].paths[0].path"], ['"/x"', '""', "relative", "1", "null", OMIT]),
    *_each(["websites[0].paths[0].method"], ["GET", "HEAD", "DELETE", "get", "Post", "PROPFIND"]),
    *_each(["websites[0].paths[0].method"], ["null", "1", OMIT]),
    *_each(["websites[0].domain"], ['"http://example.org:8080/"', '"example.org"', "1", "null"]),
    *_each([HEADERS], ["{}", "null", '{X-A: ""}', "{X-A: 1}", "{X-A: true}", "{X-A: null}"]),
    *_each([HEADERS], ["[X-A]", '"X-A: 1"']),
    *_each([DATA], ["[1, 2]", """'{"a": 1}'""", "null", "42", '"7"']),
    *_each(["websites[0].paths[0].request_data"], ["null", "{}", "a", "[]"]),
    *_each([CHECK], ["status-is: 200", 'status-is: "201"', "status-is: 1.5", "status-is: null"]),
    *_each([CHECK], ["status-in: [200, 302]", "status-in: 1.5", "body-contains: x"]),
    *_each([CHECK], ["body-contains: 42", "body-contains: 1.5", "body-contains: null"]),
    *_each([CHECK], ['body-like: "h.llo"', "body-like: 1.5", "headers-contain: [Server]"]),
    *_each([CHECK], ["headers-have: {server: nginx}", "headers-like: {server: ngi.x}"]),
    *_each([CHECK], ["json-contains: [/a]", "json-has: {/a: 1}", "json-like: {/a: x.}"]),
    *_each([CHECK], ["""json-is: '{"a": 1}'""", "json-is: {a: 1}", "json-is: 7", "json-is: 1.5"]),
    *_each([CHECK], ["http-to-https: true", "http-to-https: 301", "http-to-https: [301, 308]"]),
    *_each([CHECK], ["http-to-https: {start: 301, stop: 303}"]),
    # The check takes no value: Argos ignores what its schema lets through (text, a whole
    # number, a list, a mapping).
    *_each([CHECK], [f"ssl-certificate-expiration: {v}" for v in ("on-check", "x", "30")]),
    *_each([CHECK], [f"ssl-certificate-expiration: {v}" for v in ("true", "[x]", "{a: b}")]),
    *_each([CHECK], [f"ssl-certificate-expiration: {v}" for v in ('""', "1.5", "null")]),
    *_each([CHECK], ["status-is", "{}", "no-such-check: 1"]),
    *_each(["general.db", "service", "ssl", "recurring_tasks", "general.alerts"], ["null"]),
    *_each(["general.ldap", "general.mail.auth"], ["null", OMIT]),
    *_each(["general.ldap", "general.mail", "general.mail.auth", "websites[0]"], ["{}"]),
    *_each(["ssl.thresholds", "websites", "websites[0].paths", "general.gotify"], ["[]"]),
    *_each(["websites[0].paths[0].checks"], ["[]", "null"]),
    *[
        ({section: value, **LOCAL_ONLY}, "")
        for section, value in [
            *[
                (section, value)
                for section in ("general.mail", "general.gotify")
                for value in ("null", OMIT)
            ],
            *[("general.apprise", value) for value in ("null", OMIT, "{}")],
        ]
    ],
]

REFUSED: list[Case] = [
    *_each([GENERAL_RETRY, SITE_RETRY, *POOL, LOCK, NO_AGENT], ["true", "false"], BOOL_AS_NUMBER),
    *_each([PORT], ["true"], BOOL_AS_NUMBER),
    *_each([GENERAL_RETRY, SITE_RETRY], ["-1", '"-1"'], "a negative count"),
    *_each([GENERAL_RETRY, *POOL], ["99999999999999999999"], OVER_BOUND),
    *_each(DURATIONS, ['"367d"', '"1y 1d"'], OVER_BOUND),
    *_each([THRESHOLD], ['"367d": warning'], OVER_BOUND),
    *_each([LOCK], [str(BOUND_SECONDS + 1), "99999999999999999999"], OVER_BOUND),
    *_each([NO_AGENT], [str(BOUND_MINUTES + 1)], OVER_BOUND),
    *_each([PORT], ["70000", "99999999999999999999"], "no port number"),
    *_each(DURATIONS, MISREAD_DURATIONS, MISREAD),
    *_each([GENERAL_RECHECK, SITE_RECHECK], MISREAD_DURATIONS, MISREAD),
    *_each([GENERAL_FREQUENCY, SESSION, RESULTS_AGE], ['""'], MISREAD),
    *_each([SITE_FREQUENCY, SITE_RECHECK, REMEMBER], ["0", "false", '""'], EMPTY_SITE_KEY),
    *_each([THRESHOLD], ['"1d": error'], "no severity Argos alerts on"),
    *_each([THRESHOLD], ['"0d": warning', '"5": warning', '"-1d": warning'], MISREAD),
    *_each([THRESHOLD], ['{"1d": critical, "2d": warning}'], "Argos reads the first"),
    *_each(
        ["general.cookie_secret", "general.mail.host", "general.ldap.uri"],
        ['""'],
        EMPTY_TEXT,
    ),
    *_each(["general.ldap.user_tree", "general.ldap.user_attr"], ['""'], EMPTY_TEXT),
    *_each(["general.mail.auth.login", "general.mail.auth.password"], ['""'], EMPTY_TEXT),
    *_each(
        ["general.gotify[0].tokens", "general.apprise.team", "service.secrets"],
        ['[""]'],
        EMPTY_TEXT,
    ),
    *_each(["general.root_path"], ["argos"], "a path without its leading /"),
    *_each(
        ["general.alerts.ok", "websites[0].add_alerts_recipients"],
        ['[""]'],
        "an empty channel name: Argos drops it",
    ),
    *_each([DATA], ["a"], "is_json: Argos would send the text as one JSON string"),
    *_each(
        [CHECK],
        ['status-is: "x"', "status-is: true", "status-in: 200", "body-contains: true"],
        CHECK_VALUE,
    ),
    *_each(
        [CHECK],
        ["body-like: [x]", 'headers-contain: "x"', 'headers-have: "x"', "json-contains: [x]"],
        CHECK_VALUE,
    ),
    *_each(
        [CHECK],
        ["json-has: {x: 1}", 'json-is: "x"', "http-to-https: 1.5", "http-to-https: null"],
        CHECK_VALUE,
    ),
    *_each([CHECK], ["ssl-certificate-expiration: false"], "Argos checks it all the same"),
    *_each(
        [CHECK],
        ["{status-is: 200, body-contains: x}"],
        "Argos reads the first check only",
    ),
]

BEYOND: list[Case] = [
    *_each(
        ["general.db", "general.db.url", "general.cookie_secret", "service", "ssl"],
        [OMIT],
        ARGOS_NEEDS,
    ),
    *_each(
        ["recurring_tasks", "general.alerts", "general.alerts.ok", "general.mail.addresses"],
        [OMIT],
        ARGOS_NEEDS,
    ),
    *_each(
        ["general.db", "service", "ssl", "recurring_tasks", "general.alerts"],
        ["{}"],
        ARGOS_NEEDS,
    ),
    *_each(
        ["general.alerts.ok", "general.apprise.team", "service.secrets"],
        ["null"],
        EMPTY_LIST,
    ),
    *_each(["ssl.thresholds", "websites", "websites[0].paths"], ["null"], EMPTY_LIST),
    *_each(DURATIONS, ["10"], MINUTES),
    *_each([d for d in DURATIONS if d != SESSION], ["10.5"], MINUTES),
    *_each([GENERAL_RECHECK, SITE_RECHECK], ["2"], MINUTES),
    *_each([NO_AGENT], ['"10m"'], "time_without_agent may also be a duration"),
    *_each(
        ["general.mail.mailfrom"],
        ["text", "ops@localhost"],
        "an address is the SMTP server's to judge",
    ),
    *_each(
        ["general.mail.addresses"],
        ["[ops@localhost]"],
        "an address is the SMTP server's to judge",
    ),
    *_each(["general.db.url"], ["text"], "general.db is Argos's own database: not read"),
    *_each([HEADERS], ['{1: "x"}'], "a key is read as text"),
    *_each(["websites[0]"], ["[]"], "a list there is an included directory's websites"),
]


def _id(keys: dict[str, object]) -> str:
    return ",".join(f"{k}={'(left out)' if v is OMIT else v}" for k, v in keys.items())


CASES = [
    pytest.param(verdict, keys, why, id=f"{verdict}:{_id(keys)}")
    for verdict, cases in (("same", SAME), ("refused", REFUSED), ("beyond", BEYOND))
    for keys, why in cases
]
assert len({case.id for case in CASES}) == len(CASES), "a case is written twice"


@dataclass
class Read:
    """One case's file, and what Argos and Tocsin make of it."""

    path: Path
    rendered: Rendered
    argos: dict[str, Any]
    #: The configuration, the problems Tocsin names, or what it raised instead.
    tocsin: config.Config | list[config.Problem] | Exception


def _tocsin(path: Path) -> config.Config | list[config.Problem] | Exception:
    try:
        return config.parse(path, {})
    except config.ConfigError as exc:
        return exc.problems
    except Exception as exc:  # a traceback: that case's test fails, not every case's
        return exc


@pytest.fixture(scope="module")
def reads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Read]:
    """Every case's file read by Argos (in the background, in as many processes as CPUs: its
    own YAML and database take most of the time) while Tocsin reads them."""
    tmp = tmp_path_factory.mktemp("fields")
    files = {}
    for n, case in enumerate(CASES):
        rendered = render(case.values[1])  # type: ignore[arg-type]
        path = tmp / f"case{n}.yaml"
        path.write_text(rendered.text)
        files[case.id or ""] = (path, rendered)
    argos = ArgosTasks([path for path, _ in files.values()])
    tocsin = {name: _tocsin(path) for name, (path, _) in files.items()}
    found = argos.result()
    return {
        name: Read(path, rendered, found[str(path)], tocsin[name])
        for name, (path, rendered) in files.items()
    }


def _placed(problems: list[config.Problem], path: Path, rendered: Rendered, key: str) -> bool:
    """One problem names the key (or the mapping it is missing from), in the file, at the
    line of the value and within it."""
    for p in problems:
        if p.where.file != str(path) or not (p.path.startswith(key) or key.startswith(p.path)):
            continue
        if key not in rendered.places:  # left out: reported where its mapping is
            return p.path == key
        line, col = rendered.places[key]
        if p.where.line == line and p.where.col >= col:
            return True
    return False


@pytest.mark.parametrize(("verdict", "keys", "why"), CASES)
def test_argos_and_tocsin_agree_key_by_key(
    verdict: str, keys: dict[str, object], why: str, reads: dict[str, Read]
) -> None:
    read = reads[f"{verdict}:{_id(keys)}"]
    argos, tocsin = read.argos, read.tocsin
    if isinstance(tocsin, Exception):
        raise tocsin
    problems = tocsin if isinstance(tocsin, list) else []
    argos_reads, tocsin_reads = "error" not in argos, not problems
    shown = argos.get("error"), [str(p) for p in problems]
    if verdict == "same":
        assert argos_reads == tocsin_reads, shown
    else:  # a difference on purpose: still one, each way
        assert (argos_reads, tocsin_reads) == (verdict == "refused", verdict == "beyond"), shown
    if isinstance(tocsin, config.Config) and argos_reads:
        assert sorted(tocsin_set(tocsin), key=str) == sorted(argos_set(argos["tasks"]), key=str)
    if problems:
        assert _placed(problems, read.path, read.rendered, next(iter(keys))), shown[1]
