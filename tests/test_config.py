"""The configuration is strict: each mistake is refused with FILE:LINE:COL: key.path: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from configuration import config

HEAD = """\
general:
  frequency: 1m
websites:
  - domain: https://example.org
    paths:
      - path: /
"""


def _errors(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(body))
    with pytest.raises(config.ConfigError) as err:
        config.parse(path, env or {})
    return [str(p).replace(str(tmp_path) + "/", "") for p in err.value.problems]


def _checks(*lines: str) -> str:
    return HEAD + "        checks:\n" + "".join(f"          - {line}\n" for line in lines)


ERRORS = [
    pytest.param(
        HEAD + "        methode: POST\n        checks:\n          - status-is: 200\n",
        "c.yaml:7:9: websites[0].paths[0].methode: unknown key (did you mean 'method'?)",
        id="argos-methode-typo",
    ),
    pytest.param(
        _checks("status-si: 200"),
        "c.yaml:8:13: websites[0].paths[0].checks[0].status-si: unknown check "
        "(did you mean 'status-is'?)",
        id="unknown-check",
    ),
    pytest.param(
        _checks("status-is: 'OK'"),
        "c.yaml:8:24: websites[0].paths[0].checks[0].status-is: expected an HTTP status "
        "code (100-599), got 'OK'",
        id="wrong-type",
    ),
    pytest.param(
        _checks("body-like: '[a-'"),
        "c.yaml:8:24: websites[0].paths[0].checks[0].body-like: invalid regular "
        "expression '[a-': unterminated character set at position 0",
        id="bad-regex",
    ),
    pytest.param(
        _checks("json-contains: [status]"),
        "c.yaml:8:28: websites[0].paths[0].checks[0].json-contains: a JSON pointer "
        "starts with '/' (as in /status), got 'status'",
        id="bad-json-pointer",
    ),
    pytest.param(
        _checks("status-is: 700"),
        "c.yaml:8:24: websites[0].paths[0].checks[0].status-is: expected an HTTP status "
        "code (100-599), got 700",
        id="impossible-status",
    ),
    pytest.param(
        _checks("tcp-connect: true"),
        "c.yaml:8:13: websites[0].paths[0].checks[0].tcp-connect: check tcp-connect "
        "does not apply to https:// targets (only imap://, pop3://, smtp://, tcp://, tls://, "
        "ws://, wss://)",
        id="check-vs-scheme",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  recheck_delay: 5m\nwebsites: []\n",
        "c.yaml:3:18: general.recheck_delay: recheck_delay (300s) must be shorter than "
        "frequency (60s)",
        id="recheck-longer-than-frequency",
    ),
    pytest.param(
        "general:\n  frequency: 0s\nwebsites: []\n",
        "c.yaml:2:14: general.frequency: a duration must be positive",
        id="zero-frequency",
    ),
    pytest.param(
        "general:\n  frequency: 5 mins\nwebsites: []\n",
        "c.yaml:2:14: general.frequency: expected a duration such as 500ms, 30s, 5m, 1h30m, "
        "2d, 1w, 1M, 1y; got str '5 mins'",
        id="bad-duration",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  ipv4: false\n  ipv6: false\nwebsites: []\n",
        "c.yaml:4:9: general: ipv4 and ipv6 are both false: nothing would be checked",
        id="no-ip-version",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  ipv4: yes please\nwebsites: []\n",
        "c.yaml:3:9: general.ipv4: expected true or false, got str 'yes please'",
        id="not-a-boolean",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  cookie_secret: ${TOCSIN_TEST_UNSET}\nwebsites: []\n",
        "c.yaml:3:18: general.cookie_secret: environment variable TOCSIN_TEST_UNSET is not set",
        id="unset-env",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  alerts:\n    critical: [local, mail]\nwebsites: []\n",
        "c.yaml:4:23: general.alerts.critical[1]: channel mail needs a general.mail section",
        id="alert-channel-without-section",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  alerts:\n    critcal: [local]\nwebsites: []\n",
        "c.yaml:4:5: general.alerts.critcal: unknown key (did you mean 'critical'?)",
        id="alert-severity-typo",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  apprise: {ops: [x]}\n  alerts:\n"
        "    warning: [apprise:dev]\nwebsites: []\n",
        "c.yaml:5:15: general.alerts.warning[0]: unknown apprise group 'dev' "
        "(general.apprise: ops)",
        id="unknown-apprise-group",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  mail:\n    host: smtp\n    mailfrom: a@b\n"
        "    port: 99999\nwebsites: []\n",
        "c.yaml:6:11: general.mail.port: expected a port number (1-65535), got int 99999",
        id="mail-port",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  gotify:\n    - url: https://g\nwebsites: []\n",
        "c.yaml:4:7: general.gotify[0].tokens: required key is missing",
        id="gotify-without-tokens",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  unauthenticated_access: everyone\nwebsites: []\n",
        "c.yaml:3:27: general.unauthenticated_access: expected one of dashboard, all, "
        "got str 'everyone'",
        id="unauthenticated-access",
    ),
    pytest.param(
        "general:\n  frequency: 1m\nssl:\n  thresholds:\n    - 1d: fatal\nwebsites: []\n",
        "c.yaml:5:11: ssl.thresholds[0].1d: expected one of warning, critical, unknown, "
        "got str 'fatal'",
        id="threshold-severity",
    ),
    pytest.param(
        "general:\n  frequency: 1m\nrecurring_tasks:\n  max_results_age: forever\nwebsites: []\n",
        "c.yaml:4:20: recurring_tasks.max_results_age: expected a duration such as "
        "500ms, 30s, 5m, 1h30m, 2d, 1w, 1M, 1y; got str 'forever'",
        id="recurring-tasks",
    ),
    pytest.param(
        "general:\n  frequency: 1m\nservice:\n  secret: [x]\nwebsites: []\n",
        "c.yaml:4:3: service.secret: unknown key (did you mean 'secrets'?)",
        id="service-typo",
    ),
    pytest.param(
        "general:\n  frequency: 1m\nwebsites:\n  - domain: example.org\n    paths: []\n",
        "c.yaml:4:13: websites[0].domain: expected a URL such as https://example.org, "
        "tcp://host:port or tls://host:port, got 'example.org'",
        id="domain-without-scheme",
    ),
    pytest.param(
        "general:\n  frequency: 1m\nwebsites:\n  - domain: tcp://mail.example.org\n"
        "    checks: [tcp-connect: true]\n",
        "c.yaml:4:13: websites[0].domain: expected tcp://host:port (a port, no path), "
        "got 'tcp://mail.example.org'",
        id="tcp-without-port",
    ),
    pytest.param(
        "general:\n  frequency: 1m\nwebsites:\n  - domain: tcp://h:25\n"
        "    paths: []\n    checks: [tcp-connect: true]\n",
        "c.yaml:5:5: websites[0].paths: a tcp:// target has no paths: put its checks "
        "under the website",
        id="tcp-with-paths",
    ),
    pytest.param(
        HEAD + "        method: FETCH\n        checks: [status-is: 200]\n",
        "c.yaml:7:17: websites[0].paths[0].method: unknown HTTP method 'FETCH' (expected "
        "one of CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE)",
        id="unknown-method",
    ),
    pytest.param(
        HEAD + "        request_data:\n          data: '{oops'\n          is_json: true\n"
        "        checks: [status-is: 200]\n",
        "c.yaml:8:17: websites[0].paths[0].request_data.data: is_json is true but data "
        "is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
        "(char 1)",
        id="is-json-not-json",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n  frequency: 2m\nwebsites: []\n",
        "c.yaml:3:3: general.frequency: duplicate key",
        id="duplicate-key",
    ),
    pytest.param(
        "general:\n  frequency: 1m\nwebsites: [\n",
        "c.yaml:4:1: (top): invalid YAML: did not find expected node content",
        id="invalid-yaml",
    ),
    pytest.param("websites: []\n", "c.yaml:1:1: general: required key is missing", id="no-general"),
    pytest.param(
        "general:\n  frequency: 1m\n"
        "  mail: {mailfrom: t@x, addresses: [ops@x, not an address]}\nwebsites: []\n",
        "c.yaml:3:44: general.mail.addresses[1]: expected one mail address such as "
        "ops@example.org, got text with a space",
        id="mail-address-with-spaces",
    ),
    pytest.param(
        "general:\n  frequency: 1m\n"
        "  mail: {mailfrom: t@x, addresses: ['a@b.c, d@e.f']}\nwebsites: []\n",
        "c.yaml:3:37: general.mail.addresses[0]: expected one mail address such as "
        "ops@example.org, got two or more (one per item: [a@example.org, b@example.org])",
        id="two-mail-addresses-in-one",
    ),
    pytest.param(
        HEAD.replace("    paths:", "    add_alerts_recipients: {mail: [ops]}\n    paths:")
        + "        checks:\n          - status-is: 200\n",
        "c.yaml:5:36: websites[0].add_alerts_recipients.mail[0]: expected one mail address "
        "such as ops@example.org, got text without @",
        id="website-mail-recipient-without-at",
    ),
]


@pytest.mark.parametrize(("body", "error"), ERRORS)
def test_refused_with_place_and_reason(tmp_path, body, error):
    assert _errors(tmp_path, body) == [error]


def test_every_problem_is_listed_at_once(tmp_path):
    errors = _errors(
        tmp_path,
        HEAD + "        methode: POST\n        checks:\n"
        "          - status-si: 200\n          - body-like: '('\n",
    )
    assert [e.split(": ")[1] for e in errors] == [
        "websites[0].paths[0].methode",
        "websites[0].paths[0].checks[0].status-si",
        "websites[0].paths[0].checks[1].body-like",
    ]


def test_env_fills_values_and_marks_them_secret(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        _checks("status-is: 200").replace(
            "      - path: /\n",
            "      - path: /\n        request_data:\n          headers: {X-Token: '${TOKEN}'}\n",
        )
    )
    cfg = config.parse(path, {"TOKEN": "s3cret"})
    (task,) = cfg.tasks.values() if len(cfg.tasks) == 1 else list(cfg.tasks.values())[:1]
    assert task.request_data is not None and task.request_data.headers == {"X-Token": "s3cret"}
    assert "s3cret" in cfg.secrets


DURATIONS = [
    pytest.param("30s", 30, id="seconds"),
    pytest.param("5m", 300, id="minutes"),
    pytest.param("2h", 7200, id="hours"),
    pytest.param("1d", 86400, id="days"),
    pytest.param("1w", 604800, id="weeks"),
    # Argos's months and years (durations_nlp): 30.5 days, and 12 of those.
    pytest.param("1M", 2635200, id="month-1M"),
    pytest.param("1y", 31622400, id="years"),
    pytest.param("1h 30m", 5400, id="compound"),
    pytest.param("2 hours and 5 minutes", 7500, id="words"),
    pytest.param(5, 300, id="bare-number-minutes"),
    pytest.param("1.5m", 90, id="fraction"),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_durations(text, seconds):
    assert config.parse_duration(text) == seconds


def test_argos_sections_are_accepted_and_general_kept_as_data(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent("""\
        general:
          db: {url: "postgresql://argos:pw@localhost/argos", pool_size: 10, max_overflow: 20}
          env: production
          cookie_secret: "change-me"
          session_duration: 10080
          remember_me_duration: 1M
          unauthenticated_access: dashboard
          ldap: {uri: "ldaps://ldap", user_tree: "ou=users", bind_dn: "cn=x", bind_pwd: "pw",
                 user_attr: uid, user_filter: "(x=1)"}
          root_path: /argos
          frequency: 1m
          recheck_delay: 20s
          retry_before_notification: 2
          ipv4: true
          ipv6: false
          alerts:
            ok: [local]
            warning: [local, mail]
            critical: [local, mail, gotify, apprise:ops]
            unknown: [local]
            no_agent: [local]
          mail:
            mailfrom: argos@example.org
            host: smtp.example.org
            port: 587
            ssl: false
            starttls: true
            auth: {login: argos, password: pw}
            addresses: [ops@example.org]
          gotify:
            - url: https://gotify.example.org
              tokens: [abc]
          apprise:
            ops: ["mailto://u:p@example.org"]
        service:
          secrets: [agent-token]
        ssl:
          thresholds:
            - "1d": critical
            - "5d": warning
        recurring_tasks:
          max_results_age: 1d
          max_lock_seconds: 100
          time_without_agent: 5
        websites: []
        """)
    )
    cfg = config.parse(path, {})
    assert cfg.general["alerts"]["critical"] == ["local", "mail", "gotify", "apprise:ops"]
    assert cfg.general["mail"]["port"] == 587
    assert cfg.ssl_thresholds == [(86400.0, "critical"), (432000.0, "warning")]
    assert {"pw", "agent-token", "abc", "change-me"} <= cfg.secrets


def test_task_per_check_and_ip_version_with_stable_ids(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        HEAD.replace("frequency: 1m", "frequency: 1m\n  ipv6: true")
        + "        checks: [status-is: 200, body-contains: hi]\n"
    )
    first = config.parse(path, {})
    assert len(first.tasks) == 4
    assert len({t.group for t in first.tasks.values()}) == 2  # one request per IP version
    path.write_text(
        HEAD.replace("frequency: 1m", "frequency: 2m\n  ipv6: true")
        + "        checks: [body-contains: hi, status-is: 200]\n"
    )
    assert config.parse(path, {}).tasks.keys() == first.tasks.keys()
