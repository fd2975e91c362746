"""An Argos file's checks wait for a site as long as Argos's agent waits.

Argos 0.10.3 has no ``timeout`` key: its agent gives every request ``timeout=60`` (httpx's
connect, read, write and pool timeouts, each). A site answering in 30 s is up for Argos; at
Tocsin's former 10 s it was CRITICAL, and where Argos and Tocsin agents share a location the
verdict depended on which one asked. What Argos's agent uses is read from the agent itself
(its request recorded by an in-memory transport), not copied here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from checks import request
from configuration.config import parse
from tests.argos_support import argos_bin
from tests.helpers import write_config

#: Argos's agent makes one request of a task group; the transport records its timeouts.
AGENT_TIMEOUTS = """
import asyncio, json, httpx
from argos.agent import ArgosAgent

seen = []
def site(request):
    seen.append(request.extensions["timeout"])
    return httpx.Response(200)

async def main():
    agent = ArgosAgent("http://argos", "token", 1, 1, "", "oracle")
    agent._http_client_v4 = httpx.AsyncClient(transport=httpx.MockTransport(site))
    details = {"url": "https://example.org/", "ip_version": "4", "method": "GET",
               "request_data": None}
    await agent._do_request("group", details)

asyncio.run(main())
print(json.dumps(seen[0]))
"""

#: An Argos file (no timeout key), with a Tocsin-only target beside.
ARGOS_FILE = """\
general:
  frequency: {frequency}
websites:
  - domain: https://example.org
    paths:
      - path: /
        checks:
          - status-is: 200
  - domain: tcp://example.org:22
    checks:
      - tcp-connect: true
"""


@pytest.fixture(scope="module")
def argos_timeouts() -> dict[str, float]:
    out = subprocess.run(
        [str(argos_bin() / "python"), "-c", AGENT_TIMEOUTS],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def _timeouts(tmp_path: Path, frequency: str = "1m", extra: str = "") -> dict[str, float]:
    body = ARGOS_FILE.format(frequency=frequency).replace("general:\n", f"general:\n{extra}")
    tasks = parse(write_config(tmp_path / "argos.yaml", body)).tasks.values()
    return {t.url.split(":")[0]: t.timeout for t in tasks}


def test_an_argos_file_waits_as_argos_agent(argos_timeouts, tmp_path: Path) -> None:
    assert set(argos_timeouts.values()) == {60}
    # Tocsin's deadline is the whole request's: at least the longest step Argos allows.
    assert _timeouts(tmp_path)["https"] == argos_timeouts["read"]


def test_a_timeout_in_the_file_holds(tmp_path: Path) -> None:
    assert _timeouts(tmp_path, extra="  timeout: 15s\n") == {"https": 15, "tcp": 15}


def test_tocsin_own_probes_keep_a_short_default(tmp_path: Path) -> None:
    """Argos's agents make HTTP requests only: a ``tcp://`` check has no Argos verdict to
    match, and a dead port is told in 10 s rather than a minute."""
    assert _timeouts(tmp_path)["tcp"] == 10


@pytest.mark.parametrize(("frequency", "give_up"), [("1m", 120), ("30s", 120), ("5m", 600)])
def test_no_answer_is_unknown_after_twice_the_longer(
    tmp_path: Path, frequency: str, give_up: float
) -> None:
    """The scheduler's no-answer rule: twice the frequency, or twice the timeout if longer, so
    a site answering at 59 s at a 30 s frequency is judged, not given up."""
    tasks = [
        t
        for t in parse(
            write_config(tmp_path / "f.yaml", ARGOS_FILE.format(frequency=frequency))
        ).tasks.values()
        if t.url.startswith("https")
    ]
    assert request.give_up_after(tasks) == give_up
