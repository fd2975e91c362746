"""``tocsin agent --processes 2``: two worker processes share the location's work queue, each
request completed once; the heartbeat speaks for both; SIGTERM stops them all, and a worker
that dies takes the agent down (whatever restarts it restarts it whole). A kind that needs
more of the loop than streams (ICMP's socket) runs in a real agent process, on its uvloop."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from aiohttp import web

from checks import packet_loss
from events import codec, streams, subjects
from events.types import AgentHeartbeat, CheckCompleted
from runtime import bus
from runtime.embedded import NatsServer
from tests.faults.harness import Service
from tests.helpers import free_port, wait_for
from tests.security_support import request_event


class Gate:
    """A target that holds every request until opened, counting those it holds."""

    def __init__(self) -> None:
        self.held = 0
        self.open = asyncio.Event()

    async def answer(self, _request: web.Request) -> web.Response:
        self.held += 1
        await self.open.wait()
        return web.Response(text="fine")


@pytest.fixture
async def gate() -> AsyncIterator[tuple[Gate, str]]:
    g = Gate()
    app = web.Application()
    app.router.add_get("/held", g.answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield g, f"http://127.0.0.1:{port}/held"
    g.open.set()
    await runner.cleanup()


def _agent(nats_url: str, log: Path) -> Service:
    args = ["agent", "--nats-url", nats_url, "--name", "a1", "--location", "eu"]
    return Service([*args, "--processes", "2", "--concurrency", "1", "--host-interval", "0"], log)


def _exists(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}/stat")


def _workers(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                found.append(int(entry))
    return found


async def test_two_processes_share_the_work_and_stop_together(
    nats_server: NatsServer, gate: tuple[Gate, str], tmp_path: Path
) -> None:
    held, url = gate
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["eu"])
    for group in ("g1", "g2"):
        subject, data, msg_id = request_event("eu", group, url)
        await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    agent = _agent(nats_server.url, tmp_path / "agent.log")
    try:
        assert agent.proc is not None
        pid = agent.proc.pid
        workers = await wait_for(
            lambda: _value(len(_workers(pid)) == 2 and _workers(pid)), what="two workers"
        )
        # One request at a time per process: both held at once means both processes work.
        await wait_for(lambda: _value(held.held == 2), 60, what="both requests held at once")
        held.open.set()
        completed = await wait_for(lambda: _completed(js, 2), 60, what="both requests completed")
        assert sorted(completed) == ["g1.eu.0", "g2.eu.0"]  # each once
        beat = await wait_for(lambda: _beat(js, 2), 60, what="a heartbeat counting both")
        assert beat.concurrency == 2  # two processes, one request at a time each
        assert await agent.stop(60) == 0, agent.output()[-3000:]
        assert not [w for w in workers if _exists(w)]
    finally:
        if agent.alive:
            agent.kill()
        await nc.close()


async def test_a_dead_worker_takes_the_agent_down(nats_server: NatsServer, tmp_path: Path) -> None:
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), ["eu"])
    await nc.close()
    agent = _agent(nats_server.url, tmp_path / "agent.log")
    try:
        assert agent.proc is not None
        pid = agent.proc.pid
        workers = await wait_for(
            lambda: _value(len(_workers(pid)) == 2 and _workers(pid)), what="two workers"
        )
        os.kill(workers[0], signal.SIGKILL)
        assert await agent.wait(60) != 0
        assert await wait_for(
            lambda: _value(not _exists(workers[1])),
            60,
            what="the other worker gone",
        )
    finally:
        if agent.alive:
            agent.kill()


async def test_icmp_runs_in_the_agent_process(nats_server: NatsServer, tmp_path: Path) -> None:
    """The agent's loop is uvloop's (runtime/cliopts.py), whose ``sock_sendto`` raised
    NotImplementedError on an ICMP socket: every ``icmp://`` task was unknown while ``tocsin
    check``, on asyncio's loop, worked."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["eu"])
    limits = packet_loss.parse({"warning": "20%"})
    subject, data, msg_id = request_event(
        "eu", "g1", "icmp://127.0.0.1?count=3", kind=packet_loss.NAME, expected=limits
    )
    await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    args = ["agent", "--nats-url", nats_server.url, "--name", "a1", "--location", "eu"]
    agent = Service([*args, "--host-interval", "0"], tmp_path / "agent.log")
    try:
        (done,) = await wait_for(lambda: _completions(js, 1), 60, what="the echo completed")
        (outcome,) = done.outcomes
        assert done.observation.error is None, done.observation.error
        assert (outcome.status, outcome.detail) == ("success", "3 of 3 echoes answered (0% lost)")
        assert await agent.stop(60) == 0, agent.output()[-3000:]
    finally:
        if agent.alive:
            agent.kill()
        await nc.close()


async def _completions(js: object, n: int) -> list[CheckCompleted] | None:
    done = [
        codec.decode(m.data, m.subject)
        async for m in bus.replay(js, subjects.completed("a1", "eu", "*"))  # type: ignore[arg-type]
    ]
    return done if len(done) >= n else None  # type: ignore[return-value]


async def _value(v: object) -> object:
    return v


async def _completed(js: object, n: int) -> list[str] | None:
    done = [
        codec.decode(m.data, m.subject).request  # type: ignore[union-attr]
        async for m in bus.replay(js, subjects.completed("a1", "eu", "*"))  # type: ignore[arg-type]
    ]
    return done if len(done) >= n else None


async def _beat(js: object, completed: int) -> AgentHeartbeat | None:
    beats = [
        codec.decode(m.data, m.subject)
        async for m in bus.replay(js, subjects.heartbeat("a1", "eu"))  # type: ignore[arg-type]
    ]
    last = beats[-1] if beats else None
    ok = isinstance(last, AgentHeartbeat) and last.completed == completed
    return last if ok else None  # type: ignore[return-value]
