"""The life of a request, from the log: queued → running → judged with the run's log lines in
order; a killed agent's request redelivered then completed; out of deliveries →
dead-lettered with its reason; a configuration change cancels what it superseded."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from events import codec, streams
from events.types import CheckRequested, CheckSpec, CheckStarted
from services.web import authdb
from services.web.settings import WebSettings
from tests.helpers import DemoTarget, Stack, fetch, wait_for, write_config
from tests.web_fixtures import Seeder, task_def, web_server

CONFIG = """
general:
  frequency: 1h
  ipv6: false
  timeout: 10s
websites:
  - domain: {url}
    paths:
      - path: /slow
        request_data:
          headers: {{Authorization: 'Bearer ${{TOKEN}}'}}
        checks:
          - status-is: 200
          - body-contains: wait
"""


class Life:
    def __init__(self, stack: Stack, web: Any, client: httpx.AsyncClient, db: str) -> None:
        self.stack, self.web, self.c, self.db = stack, web, client, db

    async def task_id(self) -> str:
        rows = await wait_for(lambda: fetch(self.db, "SELECT id FROM tasks"), what="the task")
        return str(rows[0]["id"])

    async def press(self) -> str:
        r = await self.c.post(f"/api/tasks/{await self.task_id()}/check")
        assert r.status_code == 202, r.text
        return str(r.json()["requests"][0]["request"])

    async def status(self, rid: str) -> dict[str, Any] | None:
        r = await self.c.get(f"/api/requests/{rid}")
        return r.json() if r.status_code == 200 else None

    async def until(self, rid: str, status: str, timeout: float = 30) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            s = await self.status(rid)
            return s if s and s["status"] == status else None

        return await wait_for(reached, timeout, 0.05, what=f"request {status}")  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def life(
    nats_url: str, db: str, target: DemoTarget, tmp_path: Path, monkeypatch: Any, **sched: Any
) -> AsyncIterator[Life]:
    monkeypatch.setenv("TOKEN", "s3cret-value")
    config = write_config(tmp_path / "c.yaml", CONFIG.format(url=target.url))
    stack = Stack(nats_url, db, config)
    stack.scheduler(**sched)
    stack.projector()
    conn = await asyncpg.connect(db)
    try:
        await authdb.ensure(conn)
        token = await authdb.create_token(conn, "ops", "write")
    finally:
        await conn.close()
    settings = WebSettings(cookie_secret="c" * 32, nats_url=nats_url)
    try:
        async with (
            web_server(db, settings) as web,
            httpx.AsyncClient(
                base_url=web.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as c,
        ):
            yield Life(stack, web, c, db)
    finally:
        await stack.close()


async def _log_lines(c: httpx.AsyncClient, rid: str) -> list[str]:
    """The run log's SSE ``line`` events, until the run's last line."""
    lines: list[str] = []
    async with c.stream("GET", f"/requests/{rid}/log") as r:
        assert r.status_code == 200
        async for raw in r.aiter_lines():
            if raw.startswith("data: "):
                lines.append(raw[6:])
                if 'class="log-done"' in raw:
                    return lines
    return lines


async def test_queued_running_judged_with_the_run_log_in_order(
    nats_server, database_url, demo_target, tmp_path, monkeypatch
):
    # "running" shows only while the target answers: long enough to be seen through the
    # projector and the API on a loaded machine, which a one-second answer is not.
    demo_target.set("slow", delay=3.0)
    async with life(nats_server.url, database_url, demo_target, tmp_path, monkeypatch) as s:
        rid = await s.press()
        queued = await s.until(rid, "queued")  # no agent yet: it waits in the queue
        assert queued["requested_by"] == "token:ops" and queued["agent"] is None
        reading = asyncio.create_task(_log_lines(s.c, rid))
        s.stack.agent("a1")
        running = await s.until(rid, "running")
        assert running["agent"] == "a1" and running["deliveries"] == 1
        assert running["queue_wait_s"] > 0
        judged = await s.until(rid, "judged")
        assert judged["run_ms"] >= 1000 and judged["error"] is None and judged["judged_at"]
        lines = await asyncio.wait_for(reading, 30)
    steps = [line.split('class="log-')[1].split('"')[0] for line in lines]
    numbers = [int(line.split('data-n="')[1].split('"')[0]) for line in lines]
    assert numbers == list(range(1, len(lines) + 1))  # every line, in order
    assert steps[:2] == ["start", "start"] and steps[-3:] == ["check", "check", "done"]
    assert steps.index("connect") < steps.index("sent") < steps.index("response")
    text = "\n".join(lines)
    assert "HTTP 200" in text and "status-is: success" in text
    assert "s3cret" not in text and "Authorization" not in text  # request headers stay out


async def test_killed_agent_request_is_redelivered_then_completed(
    nats_server, database_url, demo_target, tmp_path, monkeypatch
):
    # Long enough to be killed while running; the target waits for it at teardown.
    demo_target.set("slow", delay=10.0)
    tuning = streams.Tuning(ack_wait=2.0, max_deliver=5)
    async with life(
        nats_server.url, database_url, demo_target, tmp_path, monkeypatch, tuning=tuning
    ) as s:
        first = s.stack.agent("a1")
        rid = await s.press()
        await s.until(rid, "running")
        # Killed: its tasks die with it, nothing acked, nothing completed.
        for service, task in list(s.stack.services):
            if service is first:
                for held in list(first.in_flight.values()):
                    held.cancel()
                task.cancel()
                s.stack.services.remove((service, task))
        demo_target.set("slow", delay=0.0)
        s.stack.agent("a2")
        judged = await s.until(rid, "judged", 60)
        assert judged["agent"] == "a2" and judged["deliveries"] >= 2


CONFIG_FAST = """
general:
  frequency: 3s
  ipv6: false
websites:
  - domain: {url}
    paths:
      - path: /healthy
        checks:
          - status-is: 200
"""


async def test_out_of_deliveries_is_dead_lettered_with_its_reason(
    nats_server, database_url, demo_target, tmp_path: Path
):
    config = write_config(tmp_path / "c.yaml", CONFIG_FAST.format(url=demo_target.url))
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler(tuning=streams.Tuning(ack_wait=1.0, max_deliver=2))
    stack.projector()
    nc = await nats.connect(nats_server.url)
    worker = asyncio.create_task(_black_hole(nc))
    try:
        rows = await wait_for(
            lambda: fetch(database_url, "SELECT * FROM requests WHERE status = 'dead_lettered'"),
            40,
            what="a dead-lettered request",
        )
        assert rows[0]["deliveries"] == 2
        assert rows[0]["error"] == "no agent completed it in 2 deliveries"
        assert rows[0]["requested_at"] is not None and rows[0]["agent"] is None
    finally:
        worker.cancel()
        await nc.close()
        await stack.close()


async def _black_hole(nc: Any) -> None:
    """A worker that takes requests and never acks them: a real client, crashing every time."""
    js = nc.jetstream()
    while True:
        try:
            sub = await js.pull_subscribe_bind(durable="agents-default", stream=streams.WORK)
            break
        except Exception:
            await asyncio.sleep(0.2)
    while True:
        try:
            msgs = await sub.fetch(10, timeout=1)
        except Exception:
            await asyncio.sleep(0.1)
            continue
        for msg in msgs:
            assert isinstance(codec.decode(msg.data, msg.subject), CheckRequested)


async def test_a_configuration_change_cancels_what_it_superseded(
    nats_server, database_url, demo_target, tmp_path, monkeypatch
):
    async with life(nats_server.url, database_url, demo_target, tmp_path, monkeypatch) as s:
        rid = await s.press()
        await s.until(rid, "queued")  # no agent: it stays in the queue
        other = CONFIG.replace("/slow", "/healthy").format(url=demo_target.url)
        write_config(s.stack.config, other)
        s.stack.services[0][0].request_reload()
        cancelled = await s.until(rid, "cancelled")
        assert cancelled["error"] == "superseded by a configuration change"


async def test_a_start_claimed_for_another_locations_request_changes_nothing(database_url):
    """An agent may only say it runs requests of its own location."""
    s = Seeder(database_url)
    t = task_def(1)
    s.config([t])
    at = time.time()
    s.add(
        CheckRequested(
            at=at,
            request=f"{t.group}.eu.1",
            group=t.group,
            location="eu",
            url=t.url,
            method="GET",
            ip_version=4,
            timeout=5.0,
            due=at,
            checks=[CheckSpec(t.id, t.check, t.expected)],
        )
    )
    s.add(
        CheckStarted(
            at=at, request=f"{t.group}.eu.1", group=t.group, agent="x", location="us", delivery=1
        )
    )
    s.add(
        CheckStarted(
            at=at, request=f"{t.group}.eu.9", group=t.group, agent="x", location="eu", delivery=1
        )
    )
    await s.flush()
    rows = await fetch(database_url, "SELECT id, status, agent FROM requests")
    assert [dict(r) for r in rows] == [{"id": f"{t.group}.eu.1", "status": "queued", "agent": None}]


async def test_a_run_without_a_start_shows_its_agent_and_one_delivery(database_url):
    """A quick first run says it started in its completion alone (the agent's
    ``SAY_STARTED_AFTER``): its row is as complete as one that said it."""
    s = Seeder(database_url)
    t = task_def(1)
    s.config([t])
    at = time.time()
    s.result(t, "success", at, agent="a1")
    await s.flush()
    rows = await fetch(database_url, "SELECT status, agent, deliveries, started_at FROM requests")
    [row] = [dict(r) for r in rows]
    assert row["status"] == "completed" and row["agent"] == "a1" and row["deliveries"] == 1
    assert row["started_at"].timestamp() == pytest.approx(at - 0.1, abs=1e-3)
