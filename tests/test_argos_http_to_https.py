"""``http-to-https`` judged as Argos 0.10.3 judges it, for the same answers.

Each case is asked of a real site twice: by Tocsin's prober and by Argos's own agent
(``tests/argos/argos_agent_once.py``, its grouping, its ``http://`` twin and its check
class). Both must give the status of the table: where Tocsin agents and Argos agents
(through ``tocsin argos``) share a location, a verdict that depended on which one answered
would flap. Argos asks the ``http://`` twin on its own, whatever the ``https://`` URL does,
and judges its status only, wherever ``Location`` points.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from checks import http_to_https
from checks.probe import Prober
from events.types import CheckRequested, CheckSpec
from runtime.embedded import free_port
from services.argos import translate
from tests.argos_support import ROOT, argos_bin
from tests.checksite import CheckSite

ORACLE = ROOT / "tests" / "argos" / "argos_agent_once.py"
CLOSED = "closed"

#: id → (site: "tls" serves http and https on one port, "plain" http only (https fails, as a
#: closed 443), "closed" nothing; the URL's scheme; path; expected; the verdict of both).
CASES: dict[str, tuple[str, str, str, Any, str]] = {
    "https-up-301-to-https": ("tls", "https", "/to-https", 301, "success"),
    "https-down-http-301": ("plain", "https", "/to-https", 301, "success"),
    "https-down-http-200": ("plain", "https", "/ok", True, "failure"),
    "to-another-host": ("tls", "https", "/to-other-host", True, "success"),
    "location-http": ("tls", "https", "/to-http", True, "success"),
    "no-location": ("tls", "https", "/no-location", True, "success"),
    "relative-location": ("tls", "https", "/moved", True, "success"),
    "no-redirect-200": ("tls", "https", "/ok", True, "failure"),
    "not-found-404": ("tls", "https", "/nothing-here", True, "failure"),
    "code-not-in-list": ("tls", "https", "/to-https", [302, 307], "failure"),
    "in-range": ("tls", "https", "/to-https-308", {"start": 301, "stop": 309}, "success"),
    "range-stop-excluded": (
        "tls",
        "https",
        "/to-https-308",
        {"start": 301, "stop": 308},
        "failure",
    ),
    "http-target-judged-directly": ("tls", "http", "/to-https", True, "success"),
    "http-twin-refused": (CLOSED, "https", "/", True, "failure"),
}


CA = trustme.CA()


@pytest.fixture(scope="module")
def sites() -> Iterator[dict[str, str]]:
    """The base URL (no scheme) of each kind of site."""
    with CheckSite(CA) as tls, CheckSite(CA, tls=False) as plain:
        yield {
            "tls": f"127.0.0.1:{tls.port}",
            "plain": f"127.0.0.1:{plain.port}",
            CLOSED: f"127.0.0.1:{free_port()}",
        }


def _request(sites: dict[str, str], case: str, task_id: int) -> CheckRequested:
    site, scheme, path, expected, _ = CASES[case]
    spec = CheckSpec(case, http_to_https.NAME, http_to_https.parse(expected))
    return CheckRequested(
        at=time.time(),
        request=f"r{task_id}",
        group=f"g{task_id}",
        location="test",
        url=f"{scheme}://{sites[site]}{path}",
        method="GET",
        ip_version=4,
        timeout=5.0,
        due=time.time(),
        checks=[spec],
    )


@pytest.fixture(scope="module")
def argos_verdicts(sites: dict[str, str]) -> dict[str, str]:
    """Argos's agent's status for each case, all asked in one run of it."""
    requests = {i: _request(sites, case, i) for i, case in enumerate(CASES, 1)}
    tasks = [
        translate.argos_task(i, req, req.checks[0], "oracle", time.time())
        for i, req in requests.items()
    ]
    out = subprocess.run(
        [str(argos_bin() / "python"), str(ORACLE)],
        input=json.dumps(tasks),
        capture_output=True,
        text=True,
        check=True,
    )
    return {requests[r["task_id"]].checks[0].task: r["status"] for r in json.loads(out.stdout)}


@pytest.mark.parametrize("case", CASES)
async def test_tocsin_judges_as_the_table(sites: dict[str, str], case: str) -> None:
    trusted = ssl.create_default_context()
    CA.configure_trust(trusted)
    async with Prober(10, trusted) as prober:
        done = await prober.run(_request(sites, case, 1), "test", "test")
    outcome = next(o for o in done.outcomes if o.kind == http_to_https.NAME)
    assert outcome.status == CASES[case][-1], outcome.detail


@pytest.mark.parametrize("case", CASES)
def test_argos_judges_as_the_table(argos_verdicts: dict[str, str], case: str) -> None:
    assert argos_verdicts[case] == CASES[case][-1]
