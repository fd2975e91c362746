"""Nothing stays silent: IP-literal URLs get the IP versions they can have (with a warning),
``config check`` refuses what the agent would refuse, and the agent turns whatever stops it
from asking into an ``error`` outcome (so the task is unknown with the reason) instead of
a traceback and a redelivered request."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from checks.judge import CERT_CHECK, GroupState, judge
from checks.probe import Prober
from configuration import config
from events.types import CheckRequested, CheckSpec, RequestData, TaskDef
from services import cli
from tests.helpers import DemoTarget
from tests.test_config_bounds import check
from tests.test_config_cli import _tocsin

GENERAL = "general: {frequency: 1m}\n"


def site(tmp: Path, domain: str, extra: str = "", general: str = GENERAL) -> Path:
    main = tmp / "c.yaml"
    main.write_text(
        general + f"websites:\n  - domain: '{domain}'\n{extra}"
        "    paths:\n      - path: /\n        checks: [status-is: 200]\n"
    )
    return main


@pytest.mark.parametrize(
    ("domain", "versions"),
    [
        ("http://127.0.0.1:8080", {4}),
        ("https://[::1]", {6}),
        ("https://example.org", {4, 6}),
    ],
)
def test_ip_literal_urls_get_their_own_ip_version(tmp_path: Path, domain, versions):
    main = site(tmp_path, domain)
    cfg = config.parse(main, {})
    assert {t.ip_version for t in cfg.tasks.values()} == versions
    done = _tocsin("config", "check", str(main))
    assert done.returncode == 0, done.stderr
    if len(versions) == 1:
        (v,) = versions
        assert done.stderr == (
            f"{main}:3:13: websites[0].domain: warning: an IPv{v} address: "
            f"checked over IPv{v} only\n"
        )
    else:
        assert done.stderr == ""


def test_an_ip_literal_of_a_disabled_version_is_an_error(tmp_path: Path):
    main = site(tmp_path, "http://127.0.0.1", general="general: {frequency: 1m, ipv4: false}\n")
    code, _, err = check(main)
    assert code == 2
    assert err == f"{main}:3:13: websites[0].domain: an IPv4 address, but ipv4 is off\n"


@pytest.mark.parametrize(
    ("domain", "extra", "line_col", "message"),
    [
        pytest.param(
            'https://x.org/"><img src=x>',
            "",
            "3:13",
            "websites[0].domain: a URL must not hold spaces or control characters",
            id="markup-in-url",
        ),
        pytest.param(
            'https://"><img/src=x>.example',
            "",
            "3:13",
            "websites[0].domain: the host name may hold only letters, digits, hyphens and dots",
            id="markup-in-host",
        ),
        pytest.param(
            "https://ex_ample.org",
            "",
            "3:13",
            "websites[0].domain: the host name may hold only letters, digits, hyphens and dots",
            id="underscore-host",
        ),
    ],
)
def test_config_check_refuses_hosts_the_agent_cannot_reach(
    tmp_path: Path, domain, extra, line_col, message
):
    main = site(tmp_path, domain, extra)
    code, _, err = check(main)
    assert code == 2 and err == f"{main}:{line_col}: {message}\n"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            '"X-Test": "a\\r\\nInjected: yes"',
            "headers.X-Test: a header value must not hold CR, LF or other control characters",
        ),
        ('"X Test": "v"', "headers: a header name is letters, digits and !#$%&'*+-.^_`|~ only"),
    ],
)
def test_config_check_refuses_headers_the_agent_would_refuse(tmp_path: Path, header, message):
    main = tmp_path / "c.yaml"
    main.write_text(
        GENERAL + "websites:\n  - domain: https://example.org\n    paths:\n      - path: /\n"
        f"        request_data: {{headers: {{{header}}}}}\n        checks: [status-is: 200]\n"
    )
    code, lines, err = check(main)
    assert code == 2 and len(lines) == 1, err
    assert (lines[0]["line"], lines[0]["rest"]) == (
        "6",
        f"websites[0].paths[0].request_data.{message}",
    )


def request(url: str, ip_version: int = 4, headers: dict[str, str] | None = None) -> CheckRequested:
    return CheckRequested(
        at=time.time(),
        request="r1",
        group="g1",
        location="default",
        url=url,
        method="GET",
        ip_version=ip_version,
        timeout=5,
        due=time.time(),
        checks=[CheckSpec("t1", "status-is", 200), CheckSpec("t2", CERT_CHECK, None)],
        request_data=RequestData(headers=headers) if headers else None,
    )


@pytest.mark.parametrize(
    ("ip_version", "headers", "why"),
    [
        pytest.param(4, {"X-Test": "a\r\nInjected: yes"}, "ValueError", id="header-refused"),
        pytest.param(6, None, "", id="ipv4-literal-over-ipv6"),
    ],
)
async def test_the_agent_never_raises_and_says_why(
    demo_target: DemoTarget, ip_version, headers, why
):
    req = request(f"{demo_target.url}/", ip_version, headers)
    async with Prober(10) as prober:
        done = await prober.run(req, "a1", "default")
    statuses = {o.status for o in done.outcomes}
    assert statuses <= {"error", "failure"} and len(done.outcomes) == 2
    assert all(o.detail for o in done.outcomes)
    if why:
        # The agent could not ask: every task of the group is unknown, with the reason.
        assert statuses == {"error"} and why in done.outcomes[0].detail
        tasks = [
            TaskDef(
                id=spec.task,
                group="g1",
                domain="d",
                url=req.url,
                method="GET",
                ip_version=4,
                check=spec.kind,
                expected=spec.expected,
                frequency=60.0,
            )
            for spec in req.checks
        ]
        verdict = judge(tasks, {}, GroupState(), done, 1, [])
        assert [j.severity for j in verdict.judgements] == ["unknown", "unknown"]
        assert all("could not run the check" in j.reason for j in verdict.judgements)


async def test_tocsin_check_on_an_ipv4_literal_has_no_traceback(
    tmp_path: Path, capsys, demo_target
):
    main = site(tmp_path, demo_target.url)
    main.write_text(main.read_text().replace("path: /\n", "path: /healthy\n"))
    # In a thread: the demo target answers from this test's event loop.
    code = await asyncio.to_thread(cli.main, ["check", "--config", str(main)])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "Traceback" not in out.err and "IPv6" not in out.out
