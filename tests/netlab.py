"""A small network of namespaces for location tests, made and removed by the fixture.

``T`` holds the target website (10.77.0.1:8080, on T's loopback); each location's namespace
is joined to T by its own veth pair (10.77.i.2 ↔ 10.77.i.1) and routes 10.77.0.1 through it.
Cutting a location replaces that route with ``unreachable``; restoring puts it back. Agents
run inside their namespace and reach the test's NATS through a Unix-socket relay
(tests/netns_relay.py), so no traffic ever leaves the namespaces made here or loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers import unavailable_here
from tests.netns_relay import pipe

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent
TARGET = "10.77.0.1"
TARGET_PORT = 8080
NATS_PORT_INSIDE = 4222


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class NetLab:
    def __init__(self, locations: list[str], nats_port: int) -> None:
        tag = f"{os.getpid() % 100000}"
        self.ns = {"target": f"tct{tag}"} | {
            loc: f"tc{tag}{i}" for i, loc in enumerate(locations, 1)
        }
        self.index = {loc: i for i, loc in enumerate(locations, 1)}
        self.nats_port = nats_port
        self.dir = Path(tempfile.mkdtemp(prefix="tocsin-netlab-"))
        self.procs: list[asyncio.subprocess.Process] = []
        self.agents: list[asyncio.subprocess.Process] = []
        self.servers: list[asyncio.AbstractServer] = []

    @property
    def url(self) -> str:
        return f"http://{TARGET}:{TARGET_PORT}"

    def build(self) -> None:
        t = self.ns["target"]
        _ip("netns", "add", t)
        _ip("-n", t, "link", "set", "lo", "up")
        _ip("-n", t, "addr", "add", f"{TARGET}/32", "dev", "lo")
        for loc, i in self.index.items():
            ns = self.ns[loc]
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            inside, outside = f"{ns}x", f"{ns}t"
            _ip(
                "link",
                "add",
                inside,
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                "name",
                outside,
                "netns",
                t,
            )
            _ip("-n", t, "addr", "add", f"10.77.{i}.1/24", "dev", outside)
            _ip("-n", t, "link", "set", outside, "up")
            _ip("-n", ns, "addr", "add", f"10.77.{i}.2/24", "dev", inside)
            _ip("-n", ns, "link", "set", inside, "up")
        for loc in self.index:
            self.restore(loc)

    def cut(self, location: str) -> None:
        _ip("-n", self.ns[location], "route", "replace", "unreachable", f"{TARGET}/32")

    def restore(self, location: str) -> None:
        i = self.index[location]
        _ip("-n", self.ns[location], "route", "replace", f"{TARGET}/32", "via", f"10.77.{i}.1")

    async def _run(self, ns: str, *args: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            ns,
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    async def start(self) -> None:
        await self._run(
            self.ns["target"],
            PYTHON,
            "-c",
            "import asyncio; from services.dev.target import serve_forever; "
            f"asyncio.run(serve_forever({TARGET!r}, {TARGET_PORT}))",
        )
        for loc in self.index:
            path = str(self.dir / f"{loc}.sock")

            async def to_nats(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                nr, nw = await asyncio.open_connection("127.0.0.1", self.nats_port)
                await asyncio.gather(pipe(r, nw), pipe(nr, w))

            self.servers.append(await asyncio.start_unix_server(to_nats, path))
            relay = await self._run(
                self.ns[loc], PYTHON, "-m", "tests.netns_relay", str(NATS_PORT_INSIDE), path
            )
            assert relay.stdout is not None
            line = await asyncio.wait_for(relay.stdout.readline(), 20)
            assert line.strip() == b"ready", line

    async def agent(self, location: str, name: str) -> asyncio.subprocess.Process:
        proc = await self._run(
            self.ns[location],
            PYTHON,
            "-m",
            "services.cli",
            "agent",
            "--nats-url",
            f"nats://127.0.0.1:{NATS_PORT_INSIDE}",
            "--name",
            name,
            "--location",
            location,
        )
        self.agents.append(proc)
        return proc

    async def close(self) -> None:
        # The agents first, while their relays to NATS still run: an agent told to stop
        # publishes what it holds, and with its relay gone it waited on NATS instead.
        rest = [p for p in self.procs if p not in self.agents]
        for group in (self.agents, rest):
            for p in group:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
            for p in group:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(p.wait(), 10)
        for s in self.servers:
            s.close()
        for ns in self.ns.values():
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", ns)


def make(locations: list[str], nats_port: int) -> NetLab:
    """The lab, or a skip naming what the kernel refused (a failure when CI=true)."""
    lab = NetLab(locations, nats_port)
    try:
        lab.build()
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        for ns in lab.ns.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        why = getattr(exc, "stderr", "") or str(exc)
        message = f"network namespaces unavailable here ({why.strip()}): run as root on Linux"
        unavailable_here(message)
    return lab
