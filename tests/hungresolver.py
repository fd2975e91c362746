"""Checks run where the system's name server never answers: in namespaces of their own (a
network namespace whose loopback holds a silent UDP port 53, a mount namespace whose
/etc/resolv.conf names it), so that every lookup through the C library hangs as it does
when an agent's resolver is down. Nothing outside the namespaces changes.

``results(cases, timeout)`` runs ``python -m tests.hungresolver`` there: it probes every
case at once through the agent's own code (tests/probing.py) and prints each completion.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from events import codec, subjects
from events.types import CheckCompleted
from tests.helpers import unavailable_here
from tests.probing import probe

ROOT = Path(__file__).resolve().parent.parent
#: The C library's own wait for the silent server: longer than the checks' timeout, so that
#: a lookup the check does not bound outlasts it (and then fails as "temporary failure").
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n"
#: Loopback up; an address besides it, or getaddrinfo (AI_ADDRCONFIG) asks no server at all
#: for IPv4 names; the resolver's file replaced in this mount namespace only.
SETUP = (
    "set -e; ip link set lo up; "
    "ip link add hung0 type veth peer name hung1; "
    "ip addr add 192.0.2.1/24 dev hung0; ip link set hung0 up; "
    'mount --bind "$1" /etc/resolv.conf; '
    'echo ready; exec "$2" -m tests.hungresolver "$3"'
)

Case = tuple[str, str, Any]


def results(cases: list[Case], timeout: float) -> dict[str, CheckCompleted]:
    """Each case's completion (by URL), or a skip where namespaces cannot be made (a failure
    when CI=true)."""
    with tempfile.TemporaryDirectory(prefix="tocsin-hung-") as tmp:
        conf = Path(tmp) / "resolv.conf"
        conf.write_text(RESOLV_CONF)
        arg = json.dumps({"timeout": timeout, "cases": cases})
        proc = subprocess.run(
            [
                "unshare",
                "--mount",
                "--net",
                "sh",
                "-c",
                SETUP,
                "sh",
                str(conf),
                sys.executable,
                arg,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    if not proc.stdout.startswith("ready\n"):
        message = f"namespaces unavailable here ({proc.stderr.strip()}): run as root on Linux"
        unavailable_here(message)
    assert proc.returncode == 0, proc.stderr
    done = {}
    for line in proc.stdout.splitlines()[1:]:
        url, _, wire = line.partition(" ")
        event = codec.decode(wire.encode(), subjects.completed("test", "test", "g"))
        assert isinstance(event, CheckCompleted)
        done[url] = event
    return done


async def _main(spec: dict[str, Any]) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 53))  # bound, never read: every query goes unanswered
    cases = [tuple(c) for c in spec["cases"]]
    done = await asyncio.gather(
        *(probe(url, kind, expected, timeout=spec["timeout"]) for url, kind, expected in cases)
    )
    for (url, _, _), event in zip(cases, done, strict=True):
        print(url, codec.encode(event).decode())
    silent.close()


if __name__ == "__main__":
    asyncio.run(_main(json.loads(sys.argv[1])))
