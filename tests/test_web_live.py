"""The live stream: a page (re)connecting gets a "changed" event at once (catch-up), then
one per projector commit, from PostgreSQL's NOTIFY."""

from __future__ import annotations

import asyncio

import httpx

from tests.web_fixtures import Seeder, task_def, web_server


async def _next_event(lines) -> str:  # type: ignore[no-untyped-def]
    async for line in lines:
        if line.startswith("event: "):
            return str(line.removeprefix("event: "))
    raise AssertionError("stream ended")


async def test_live_stream_catches_up_and_follows_commits(database_url):
    s = Seeder(database_url)
    s.config([task_def(1)])
    await s.flush()
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        for _ in range(2):  # the second round is a reconnect
            async with c.stream("GET", "/live", timeout=30) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                lines = r.aiter_lines()
                assert await asyncio.wait_for(_next_event(lines), 30) == "changed"
                s.config([task_def(2)])
                await s.flush()
                assert await asyncio.wait_for(_next_event(lines), 30) == "changed"
