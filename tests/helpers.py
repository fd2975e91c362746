"""Shared test helpers: a controllable target, waiting, and the services run in-process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from readmodel import SCHEMA
from runtime.embedded import free_port
from services.agent.service import Agent, AgentOptions
from services.dev.target import BEHAVIOURS, Behaviour, make_app
from services.projector.service import Projector, ProjectorOptions
from services.scheduler.service import Scheduler, SchedulerOptions


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


async def flushed(nc: Any) -> None:
    """Return once everything ``nc`` sent so far reached the server, as ``flush()`` promises.

    nats-py 2.16 writes ``flush()``'s PING straight to the socket, ahead of the commands
    still pending: a SUB just made could reach the server after the PONG came back, and
    another connection's request then find no responder (22 times in 500 here). A second
    PING goes out after the flusher wrote what was pending before the first.
    """
    await nc.flush()
    await nc.flush()


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
            if task.done() and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()
