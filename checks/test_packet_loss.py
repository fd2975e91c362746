"""ICMP targets: real echoes to the loopback addresses, the loss graded by ``packet-loss``,
and the error where no ICMP socket may be opened."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from checks import packet_loss, response_time
from checks.base import Response
from checks.observe import icmp
from tests.probing import grade, probe

LOSS = packet_loss.NAME
LIMITS = {"warning": "20%", "critical": "50%"}


@pytest.mark.parametrize(
    ("url", "ip_version"),
    [
        pytest.param("icmp://127.0.0.1?count=3", 4, id="ipv4-loopback"),
        pytest.param("icmp://[::1]?count=3", 6, id="ipv6-loopback"),
        pytest.param("icmp://localhost?count=2", 4, id="name-resolved"),
    ],
)
async def test_loopback_answers(url, ip_version):
    done = await probe(url, LOSS, LIMITS, ip_version=ip_version, timeout=3)
    (outcome,) = done.outcomes
    facts = done.observation.facts
    assert outcome.status == "success", outcome.detail
    assert facts["loss_pct"] == 0
    assert facts["received"] == facts["sent"]
    assert 0 < facts["rtt_ms"]["min"] <= facts["rtt_ms"]["avg"] <= facts["rtt_ms"]["max"]
    assert grade(done, LIMITS) == ("ok", outcome.detail)


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


def test_no_socket_is_a_clear_error():
    """As an unprivileged user (nobody, when run as root), with the system's ping group range:
    the echo works over an unprivileged socket where the range allows it, else the error says
    what to change."""
    low, high = (int(x) for x in open("/proc/sys/net/ipv4/ping_group_range").read().split())
    code = (
        # Everything imported first: root's home (the interpreter) may be closed to nobody.
        "import asyncio, json, os\n"
        "from checks.observe import icmp\n"
        "from checks.observe.common import ProbeError\n"
        "if os.getuid() == 0:\n"
        "    os.setgid(65534); os.setgroups([]); os.setuid(65534)\n"
        "try:\n"
        "    facts = asyncio.run(icmp.ping('127.0.0.1', 4, 1, 2))\n"
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
