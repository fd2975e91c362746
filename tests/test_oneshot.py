"""`tocsin check`: an Argos configuration with every check kind, run once, no NATS nor database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from checks import CATALOGUE
from runtime.embedded import free_port
from services import cli
from tests.checksite import CheckSite

EXAMPLE = Path(__file__).parent.parent / "examples" / "argos.yaml"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_example_runs_every_check_kind_ok(ca, ca_file):
    with CheckSite(ca) as site:
        env = {**os.environ, "EXAMPLE_HOST": f"127.0.0.1:{site.port}", "SSL_CERT_FILE": ca_file}
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "check", "--config", str(EXAMPLE), "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stdout + done.stderr
    # Kinds of the other targets (dns://, icmp://, …) run in tests/test_monitors_oneshot.py.
    argos_kinds = {k for k, m in CATALOGUE.items() if m.SCHEMES & {"http", "https", "tcp", "tls"}}
    assert {r["check"] for r in rows} == argos_kinds
    assert {(r["status"], r["severity"]) for r in rows} == {("success", "ok")}, rows
    assert {
        "url",
        "method",
        "ip_version",
        "check",
        "expected",
        "status",
        "severity",
        "context",
    } <= set(rows[0])
    by_check = {r["check"]: r for r in rows if r["url"].startswith("https://")}
    assert by_check["json-has"]["method"] == "POST"
    assert by_check["ssl-certificate-expiration"]["context"].startswith("certificate expires in")
    assert by_check["status-is"]["context"] == "status 200"


def _config(tmp_path: Path, url: str, checks: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"general: {{frequency: 1m, ipv6: false}}\nwebsites:\n  - domain: {url}\n"
        f"    paths:\n      - path: /ok\n        checks: [{checks}]\n"
    )
    return str(path)


@pytest.mark.parametrize(
    ("checks", "left", "code", "worst"),
    [
        pytest.param("status-is: 200", timedelta(days=90), 0, "OK", id="all-ok-0"),
        pytest.param(
            "ssl-certificate-expiration: on-check", timedelta(days=3), 1, "WARNING", id="warning-1"
        ),
        pytest.param(
            "status-is: 200, body-contains: absent",
            timedelta(days=90),
            2,
            "CRITICAL",
            id="critical-2",
        ),
        pytest.param("json-has: {/a: 1}", timedelta(days=90), 2, "UNKNOWN", id="unknown-2"),
    ],
)
def test_exit_codes_follow_nagios(
    ca, ca_file, tmp_path, monkeypatch, capsys, checks, left, code, worst
):
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    with CheckSite(ca, not_after=datetime.now(UTC) + left) as site:
        assert (
            cli.main(["check", "--config", _config(tmp_path, site.url(scheme="https"), checks)])
            == code
        )
    table = capsys.readouterr().out
    assert worst in table


def test_unreachable_target_is_critical(tmp_path, capsys):

    url = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["check", "--config", _config(tmp_path, url, "status-is: 200"), "--json"]) == 2
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["status"], row["severity"]) == ("failure", "critical")
    assert row["context"].startswith("connect: ")


def test_invalid_configuration_exits_2_with_the_error(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(
        "general: {frequency: 1m}\nwebsites:\n  - domain: https://x.org\n"
        "    paths:\n      - path: /\n        methode: POST\n"
        "        checks: [status-is: 200]\n"
    )
    assert cli.main(["check", "--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"{path}:6:9: websites[0].paths[0].methode: unknown key (did you mean 'method'?)\n"
    )
