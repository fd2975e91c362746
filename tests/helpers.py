"""Shared test helpers: a controllable target, waiting, and the services run in-process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import asyncpg
import nats
import pytest
from aiohttp import web

from events import codec, streams, subjects
from events.types import CheckCompleted, CheckOutcome, CheckRequested, Observation, TaskJudged
from readmodel import SCHEMA
from runtime import bus
from runtime.embedded import free_port
from runtime.waiting import Stopped
from services.agent.service import Agent, AgentOptions
from services.dev.target import BEHAVIOURS, Behaviour, make_app
from services.projector.service import Projector, ProjectorOptions
from services.scheduler.service import Scheduler, SchedulerOptions

T = TypeVar("T")


class DemoTarget:
    """The demo website on a free loopback port; ``set`` changes how a path answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.app = make_app()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        # A slow answer still running when the test ends (its agent killed mid-check) is
        # cancelled after a second: aiohttp would wait up to a minute for it to finish.
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def set(self, name: str, **changes: Any) -> None:
        behaviours: dict[str, Behaviour] = self.app[BEHAVIOURS]
        b = behaviours.setdefault(name, Behaviour())
        for key, value in changes.items():
            setattr(b, key, value)


@contextlib.asynccontextmanager
async def agent_running(agent: Agent) -> AsyncIterator[asyncio.Task[None]]:
    """The agent running until the block ends, then stopped and waited for."""
    task = asyncio.create_task(agent.run())
    try:
        yield task
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)


async def dropping_one_cancellation(run: Callable[[], Awaitable[None]]) -> None:
    """``run()``, its first cancellation dropped and ``run()`` again: what a loop does when
    ``asyncio.wait_for`` of Python 3.11 (nats-py's requests use it) drops a cancellation that
    lands as what it waits for completes, and returns that instead."""
    try:
        await run()
    except asyncio.CancelledError:
        pass
    await run()


async def ended(task: asyncio.Task[T], within: float = 60) -> T:
    """``task``'s result once it ended (``within`` seconds: a hang). Not ``wait_for``: its
    cancellation at the timeout may be taken for a stop, and end the task as if it had."""
    await asyncio.wait({task}, timeout=within)
    assert task.done(), f"still running {within:g} s after"
    return task.result()


async def flushed(nc: Any) -> None:
    """Return once everything ``nc`` sent so far reached the server, as ``flush()`` promises.

    nats-py 2.16 writes ``flush()``'s PING straight to the socket, ahead of the commands
    still pending: a SUB just made could reach the server after the PONG came back, and
    another connection's request then find no responder (22 times in 500 here). A second
    PING goes out after the flusher wrote what was pending before the first.
    """
    await nc.flush()
    await nc.flush()


async def logged(nats_url: str, subject: str) -> list[Any]:
    """Every event of the log on ``subject``, decoded, in order."""
    nc = await nats.connect(nats_url)
    try:
        return [codec.decode(m.data, m.subject) async for m in bus.replay(nc.jetstream(), subject)]
    finally:
        await nc.close()


async def wait_for(
    predicate: Callable[[], Awaitable[Any]],
    timeout: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await predicate()
        except asyncpg.UndefinedTableError:  # the projector has not created its schema yet
            last = None
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def site_config(
    url: str,
    paths: dict[str, list[str]],
    frequency: str = "2s",
    timeout: str = "3s",
    **general: str,
) -> str:
    """The configuration most tests need: one website (``url``, IPv4 only), each path with its
    checks written as in YAML (``{"healthy": ["status-is: 200"]}``), and ``general`` keys."""
    lines = ["general:", f"  frequency: {frequency}", "  ipv6: false", f"  timeout: {timeout}"]
    lines += [f"  {key}: {value}" for key, value in general.items()]
    lines += ["websites:", f"  - domain: {url}", "    paths:"]
    for path, checks in paths.items():
        lines += [f"      - path: /{path}", "        checks:"]
        lines += [f"          - {check}" for check in checks]
    return "\n".join(lines) + "\n"


def write_config(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


class Stack:
    """Scheduler, agents and projector as tasks of the test's event loop."""

    def __init__(self, nats_url: str, database_url: str | None, config: Path) -> None:
        self.nats_url, self.database_url, self.config = nats_url, database_url, config
        self.services: list[tuple[Any, asyncio.Task[None]]] = []

    def _start(self, service: Any) -> Any:
        self.services.append((service, asyncio.create_task(service.run())))
        return service

    def scheduler(self, **kw: Any) -> Scheduler:
        return self._start(Scheduler(SchedulerOptions(self.nats_url, str(self.config), **kw)))

    def agent(self, name: str = "a1", **kw: Any) -> Agent:
        return self._start(Agent(AgentOptions(self.nats_url, name, **kw)))

    def projector(self) -> Projector:
        assert self.database_url
        return self._start(Projector(ProjectorOptions(self.nats_url, self.database_url)))

    async def stop(self, service: Any, timeout: float = 20) -> None:
        for s, task in self.services:
            if s is service:
                s.stop()
                await asyncio.wait_for(task, timeout)

    async def close(self) -> None:
        for s, _ in self.services:
            s.stop()
        for _, task in self.services:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
        for _, task in self.services:
            # Stopped: asked to stop before it reached NATS, a service ends so (cliopts.run).
            if task.done() and not task.cancelled() and task.exception():
                if not isinstance(task.exception(), Stopped):
                    raise task.exception()  # type: ignore[misc]


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def every_row(url: str) -> list[str]:
    """Every row of every table of the database, as ``schema.table: (row as text)``: where
    the tests of secrets look for one."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        out = []
        for schema, table in tables:
            rows = await conn.fetch(f'SELECT r::text FROM "{schema}"."{table}" r')
            out += [f"{schema}.{table}: {r[0]}" for r in rows]
        return out
    finally:
        await conn.close()


async def answer_refused(
    nats_url: str,
    database_url: str,
    config: Path,
    outcomes: Callable[[CheckRequested], list[CheckOutcome]],
) -> tuple[str, int]:
    """Run a scheduler and a projector on ``config``, answer its first request as an agent
    with ``outcomes`` of it, and wait for that completion to be a dead letter for both: its
    reason and its sequence."""
    stack = Stack(nats_url, database_url, config)
    stack.scheduler()
    stack.projector()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        msg, req = await take_request(js)
        forged = CheckCompleted(
            at=req.at + 1,
            request=req.request,
            group=req.group,
            agent="a1",
            location=req.location,
            started=req.at + 0.5,
            observation=Observation(status=200),
            outcomes=outcomes(req),
        )
        subject = subjects.completed("a1", req.location, req.group)
        ack = await js.publish(subject, codec.encode(forged))
        await msg.ack()
        return await refused_for_all(database_url, js, ack.seq), ack.seq
    finally:
        await nc.close()
        await stack.close()


async def take_request(js: Any) -> tuple[Any, CheckRequested]:
    """The first request of the default location's queue, taken as an agent takes it: the
    message (for its ack) and the request."""

    async def one() -> Any:
        try:
            sub = await js.pull_subscribe_bind(durable="agents-default", stream=streams.WORK)
            return (await sub.fetch(1, timeout=1))[0]
        except Exception:  # no queue, or no request in it yet
            return None

    msg = await wait_for(one, 30, what="a request")
    req = codec.decode(msg.data, msg.subject)
    assert isinstance(req, CheckRequested)
    return msg, req


async def refused_for_all(database_url: str, js: Any, seq: int) -> str:
    """The reason of the dead letter of the completion at ``seq``, once recorded and once the
    scheduler is past it, after checking that no verdict judged it."""

    async def dead() -> list[Any]:
        query = "SELECT reason FROM dead_letters WHERE source_seq = $1"
        return await fetch(database_url, query, seq)

    async def judged_past() -> bool:
        info = await js.consumer_info(streams.EVENTS, streams.completions_durable(0))
        return bool(info.ack_floor.stream_seq >= seq)

    rows = await wait_for(dead, 30, what=f"message {seq} dead-lettered")
    await wait_for(judged_past, 30, what=f"the scheduler past message {seq}")
    verdicts = [
        codec.decode(m.data, m.subject) async for m in bus.replay(js, "tocsin.task.judged.>")
    ]
    assert [v for v in verdicts if isinstance(v, TaskJudged) and v.completion == seq] == []
    return str(rows[0]["reason"])


def unavailable_here(message: str) -> NoReturn:
    """A test needing a kernel feature this machine lacks (namespaces, mounts): skipped here,
    a failure in CI (``CI=true``), where the feature must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
