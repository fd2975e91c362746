"""ICMP targets: real echoes to the loopback addresses, on asyncio's loop (``tocsin check``)
and uvloop's (the agent), the loss graded by ``packet-loss``, the echoes spread within the
timeout, and the error where no ICMP socket may be opened."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import uvloop

from checks import packet_loss, response_time
from checks.base import Response
from checks.observe import icmp
from tests.probing import grade, probe

LOSS = packet_loss.NAME
LIMITS = {"warning": "20%", "critical": "50%"}

#: The agent runs its probes on uvloop (runtime/cliopts.py), ``tocsin check`` on asyncio's
#: loop: an ICMP socket must work on both.
LOOPS = [
    pytest.param(asyncio.new_event_loop, id="asyncio"),
    pytest.param(uvloop.new_event_loop, id="uvloop"),
]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


def _run(loop: LoopFactory, coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop) as runner:
        return runner.run(coro)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(
    ("url", "ip_version", "timeout"),
    [
        pytest.param("icmp://127.0.0.1?count=3", 4, 3, id="ipv4-loopback"),
        pytest.param("icmp://[::1]?count=3", 6, 3, id="ipv6-loopback"),
        pytest.param("icmp://localhost?count=2", 4, 3, id="name-resolved"),
        # 20 echoes 0.2 s apart would take 3.8 s: spread closer, all are sent and answered.
        pytest.param("icmp://127.0.0.1?count=20", 4, 3, id="twenty-within-3s"),
        pytest.param("icmp://127.0.0.1?count=20", 4, 1, id="twenty-within-1s"),
    ],
)
def test_loopback_answers(url, ip_version, timeout, loop):
    done = _run(loop, probe(url, LOSS, LIMITS, ip_version=ip_version, timeout=timeout))
    (outcome,) = done.outcomes
    facts = done.observation.facts
    count = int(url.rpartition("=")[2])
    assert outcome.status == "success", outcome.detail
    assert facts["loss_pct"] == 0
    # A loaded machine may send fewer in time (``test_echoes_not_sent_are_not_lost``): every
    # echo sent is answered, and none is counted lost.
    assert facts["received"] == facts["sent"] and 0 < facts["sent"] <= count
    assert 0 < facts["rtt_ms"]["min"] <= facts["rtt_ms"]["avg"] <= facts["rtt_ms"]["max"]
    assert grade(done, LIMITS) == ("ok", outcome.detail)


@pytest.mark.parametrize("loop", LOOPS)
def test_echoes_not_sent_are_not_lost(loop):
    """An agent too busy to send every echo in time (here its loop held past half the
    timeout just after the first) sends fewer: those never sent are neither in ``sent`` nor
    lost."""

    async def busy() -> dict[str, Any]:
        asyncio.get_running_loop().call_soon(time.sleep, 0.6)
        return await icmp.ping("127.0.0.1", 4, 5, 1)

    facts = _run(loop, busy())
    assert (facts["sent"], facts["received"], facts["loss_pct"]) == (1, 1, 0)


@pytest.mark.parametrize(
    ("count", "timeout", "interval"),
    [
        pytest.param(3, 10, 0.2, id="few-echoes-200ms-apart"),
        pytest.param(5, 2, 0.2, id="fits-exactly-in-half"),
        pytest.param(20, 3, 0.075, id="twenty-in-half-of-3s"),
        pytest.param(20, 1, 0.025, id="twenty-in-half-of-1s"),
        pytest.param(1, 0.1, 0.05, id="one-echo"),
    ],
)
def test_echoes_spread_over_half_the_timeout(count, timeout, interval):
    assert icmp.spacing(count, timeout) == pytest.approx(interval)


async def test_round_trip_is_response_time():
    done = await probe("icmp://127.0.0.1?count=2", response_time.NAME, {"warning": "1s"})
    assert done.outcomes[0].status == "success"
    assert done.outcomes[0].value == pytest.approx(done.observation.facts["rtt_ms"]["avg"], abs=0.1)


def _answer(sent: int, received: int) -> Response:
    loss = round(100 * (sent - received) / sent, 1)
    return Response(0, facts={"sent": sent, "received": received, "loss_pct": loss})


GRADES = [
    pytest.param(10, 10, "success", "ok", id="none-lost-ok"),
    pytest.param(10, 8, "success", "ok", id="20-percent-is-the-limit-ok"),
    pytest.param(10, 7, "success", "warning", id="30-percent-warning"),
    pytest.param(10, 4, "failure", "critical", id="60-percent-critical"),
]


@pytest.mark.parametrize(("sent", "received", "status", "severity"), GRADES)
def test_loss_graded(sent, received, status, severity):
    limits = packet_loss.parse(LIMITS)
    verdict = packet_loss.evaluate(_answer(sent, received), limits)
    assert verdict.status == status
    assert verdict.value is not None
    assert packet_loss.grade(verdict.value, limits) == severity


@pytest.mark.parametrize("run", ["asyncio.run", "uvloop.run"])
def test_no_socket_is_a_clear_error(run):
    """As an unprivileged user (nobody, when run as root), with the system's ping group range:
    the echo works over an unprivileged socket where the range allows it, else the error says
    what to change."""
    low, high = (int(x) for x in open("/proc/sys/net/ipv4/ping_group_range").read().split())
    code = (
        # Everything imported first: root's home (the interpreter) may be closed to nobody.
        "import asyncio, json, os, uvloop\n"
        "from checks.observe import icmp\n"
        "from checks.observe.common import ProbeError\n"
        "if os.getuid() == 0:\n"
        "    os.setgid(65534); os.setgroups([]); os.setuid(65534)\n"
        "try:\n"
        f"    facts = {run}(icmp.ping('127.0.0.1', 4, 1, 2))\n"
        "    print(json.dumps({'socket': facts['socket'], 'gid': os.getgid()}))\n"
        "except ProbeError as exc:\n"
        "    print(json.dumps({'error': str(exc), 'gid': os.getgid()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=os.getcwd()
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    if low <= got["gid"] <= high:
        assert got == {"socket": "unprivileged", "gid": got["gid"]}
    else:
        assert got["error"] == icmp.NO_PERMISSION


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("20%", id="not-a-mapping"),
        pytest.param({"warning": "100%"}, id="hundred"),
        pytest.param({"warning": "x"}, id="not-a-number"),
        pytest.param({"warning": "50%", "critical": "20%"}, id="warning-above-critical"),
        pytest.param({"lost": "5%"}, id="unknown-limit"),
    ],
)
def test_parse_refuses(value):
    with pytest.raises(ValueError):
        packet_loss.parse(value)
