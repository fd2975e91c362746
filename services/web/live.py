"""Fan-out of the projector's commits to open pages (PostgreSQL LISTEN → SSE).

One listening connection per web process; each open page gets a queue. A
burst of commits is coalesced so a page re-renders at most a few times a
second, however fast results arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg

from readmodel import CHANNEL
from runtime import db
from runtime.logs import Log

log = Log("tocsin.web.live")


class Hub:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.clients: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _publish(self, payload: str) -> None:
        for q in list(self.clients):
            if q.empty():  # a pending notice already tells the page to refresh
                q.put_nowait(payload)

    async def _listen(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await db.connect(self.database_url)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())  # type: ignore[misc]
                await conn.add_listener(
                    CHANNEL, lambda _c, _pid, _ch, payload: self._publish(payload)
                )
                self._publish("{}")  # we may have missed commits while away
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live listener lost", error=str(exc))
                await asyncio.sleep(1)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def stream(self, min_interval: float = 0.25) -> AsyncIterator[str]:
        """SSE frames for one page: a ``changed`` event at once (catch-up), then on each commit."""
        q: asyncio.Queue[str] = asyncio.Queue()
        self.clients.add(q)
        try:
            yield "retry: 1000\nevent: changed\ndata: {}\n\n"
            while True:
                try:
                    payload = await asyncio.wait_for(q.get(), 15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: changed\ndata: {payload}\n\n"
                await asyncio.sleep(min_interval)
        finally:
            self.clients.discard(q)
