"""Helpers of the web tests: the web service on a free port, users, and read models seeded
through the projector's own fold (real events into real PostgreSQL, no shortcuts)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import uvicorn

from events.types import (
    AgentHeartbeat,
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    CheckSpec,
    ConfigApplied,
    DeadLettered,
    Judgement,
    Observation,
    TaskDef,
    TaskJudged,
)
from readmodel import ensure_schema
from runtime.embedded import free_port
from services.projector.service import apply_batch
from services.web import authdb
from services.web.app import create_app
from services.web.settings import WebSettings, server_options


class WebServer:
    def __init__(self, database_url: str, settings: WebSettings | None = None) -> None:
        self.port = free_port()
        settings = settings or WebSettings(cookie_secret="t" * 32)
        self.app = create_app(database_url, settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            # Open SSE streams would hold the shutdown forever.
            timeout_graceful_shutdown=2,
            **server_options(settings),
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> WebServer:
        self.task = asyncio.create_task(self.server.serve())
        deadline = time.monotonic() + 30
        while not self.server.started:
            if self.task.done():
                self.task.result()
            assert time.monotonic() < deadline, "web server did not start"
            await asyncio.sleep(0.05)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task:
            await asyncio.wait_for(self.task, 20)


@contextlib.asynccontextmanager
async def web_server(
    database_url: str, settings: WebSettings | None = None
) -> AsyncIterator[WebServer]:
    server = await WebServer(database_url, settings).start()
    try:
        yield server
    finally:
        await server.stop()


async def add_user(database_url: str, name: str, password: str, disabled: bool = False) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await authdb.ensure(conn)
        await authdb.add_user(conn, name, password)
        if disabled:
            await authdb.set_disabled(conn, name, True)
    finally:
        await conn.close()


def task_def(
    i: int, domain: str = "example.org", check: str = "status-is", expected: Any = 200
) -> TaskDef:
    url = f"https://{domain}/p{i}"
    return TaskDef(
        id=f"t{i}-{domain}",
        group=f"g{i}-{domain}",
        domain=domain,
        url=url,
        method="GET",
        ip_version=4,
        check=check,
        expected=expected,
        frequency=60.0,
    )


class Seeder:
    """Appends events with increasing sequences and folds them like the projector does."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.seq = 0
        self.batch: list[tuple[int, Any]] = []

    def add(self, event: Any) -> int:
        self.seq += 1
        self.batch.append((self.seq, event))
        return self.seq

    def config(self, tasks: list[TaskDef], at: float | None = None) -> None:
        self.add(
            ConfigApplied(
                at=at or time.time(),
                revision="r1",
                source="test.yaml",
                applied_by="tester",
                added=tasks,
            )
        )

    def result(
        self,
        t: TaskDef,
        status: str,
        at: float,
        http: int | None = 200,
        ms: float | None = 42.0,
        error: str | None = None,
        detail: str = "",
        headers: dict[str, str] | None = None,
        agent: str = "a1",
    ) -> int:
        obs = Observation(status=http, headers=headers or {}, elapsed_ms=ms, error=error)
        request = f"req-{self.seq}"
        # The projector stores only completions answering a request of the log.
        self.add(
            CheckRequested(
                at=at - 1,
                request=request,
                group=t.group,
                location="default",
                url=t.url,
                method=t.method,
                ip_version=t.ip_version,
                timeout=t.timeout,
                due=at - 1,
                checks=[CheckSpec(t.id, t.check, t.expected)],
            )
        )
        return self.add(
            CheckCompleted(
                at=at,
                request=request,
                group=t.group,
                agent=agent,
                location="default",
                started=at - 0.1,
                observation=obs,
                outcomes=[
                    CheckOutcome(
                        task=t.id,
                        kind=t.check,
                        status=status,  # type: ignore[arg-type]
                        detail=detail,
                    )
                ],
            )
        )

    def judge(
        self, t: TaskDef, severity: str, previous: str | None, at: float, reason: str = "judged"
    ) -> None:
        self.add(
            TaskJudged(
                at=at,
                group=t.group,
                completion=self.seq,
                next_run=at + 60,
                judgements=[
                    Judgement(
                        task=t.id,
                        severity=severity,  # type: ignore[arg-type]
                        previous=previous,  # type: ignore[arg-type]
                        reason=reason,
                    )
                ],
            )
        )  # type: ignore[arg-type]

    def heartbeat(self, name: str, at: float, location: str = "default") -> None:
        self.add(
            AgentHeartbeat(
                at=at,
                agent=name,
                location=location,
                version="0.1.0",
                concurrency=10,
                in_flight=1,
                completed=5,
                started=at - 100,
            )
        )

    def dead_letter(self, group: str, at: float) -> None:
        self.add(
            DeadLettered(
                at=at,
                kind="max_deliver",
                stream="WORK",
                seq=3,
                subject="tocsin.check.requested.default",
                consumer="agents",
                reason="no agent completed the request",
                group=group,
            )
        )

    async def flush(self) -> None:
        conn = await asyncpg.connect(self.database_url)
        try:
            await ensure_schema(conn)
            for i in range(0, len(self.batch), 5000):
                await apply_batch(conn, self.batch[i : i + 5000])
        finally:
            await conn.close()
        self.batch = []
