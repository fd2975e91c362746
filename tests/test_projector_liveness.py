"""The agents and hosts pages tell how long an agent or a host has been silent from when the
log received its last heartbeat or figures, not from the time its clock wrote in them; their
latest figures are the latest taken, whatever order the log received them in. A rebuild from
the log makes the same rows."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from events import codec, contract, streams
from events.types import AgentHeartbeat, AnyEvent
from readmodel import SCHEMA
from runtime import bus
from runtime.embedded import NatsServer
from services.projector.rebuild import checksum, rebuild
from services.web import hosts as host_views
from services.web import queries
from tests.helpers import Stack, wait_for
from tests.test_host_thresholds import _obs
from tests.test_web_pages import login
from tests.web_fixtures import add_user, web_server


class Log:
    """The test's side of the log: publish events, wait for the projector to fold them."""

    def __init__(self, nats_url: str, database_url: str, tmp_path: Path) -> None:
        self.nats_url, self.database_url = nats_url, database_url
        self.stack = Stack(nats_url, database_url, tmp_path / "unused.yaml")
        self.seq = 0

    async def publish(self, *events: AnyEvent) -> None:
        nc = await bus.connect(self.nats_url, "test")
        try:
            js = nc.jetstream()
            await streams.ensure(js, ["default"])
            for ev in events:
                self.seq = (await js.publish(contract.subject_of(ev), codec.encode(ev))).seq
        finally:
            await bus.close(nc)

    async def folded(self, conn: asyncpg.Connection) -> None:
        """Wait until the projector has folded everything published."""

        async def reached() -> bool:
            return bool(await conn.fetchval("SELECT seq FROM position") >= self.seq)

        await wait_for(reached, what=f"the projector at {self.seq}")


@pytest.fixture
async def log(nats_server: NatsServer, database_url: str, tmp_path: Path) -> AsyncIterator[Log]:
    log = Log(nats_server.url, database_url, tmp_path)
    yield log
    await log.stack.close()


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    yield c
    await c.close()


def _beat(clock: float, in_flight: int) -> AgentHeartbeat:
    return AgentHeartbeat(
        at=time.time() + clock,
        agent="a1",
        location="default",
        version="1",
        concurrency=4,
        in_flight=in_flight,
        completed=0,
        started=time.time(),
    )


async def _one_agent(conn: asyncpg.Connection) -> dict[str, Any]:
    (row,) = await queries.agents(conn)
    return row


async def _one_host(conn: asyncpg.Connection) -> dict[str, Any]:
    (row,) = await host_views.hosts(conn)
    return row


async def _rebuilt_alike(log: Log, conn: asyncpg.Connection) -> None:
    live = await checksum(conn)
    await rebuild(log.nats_url, log.database_url, progress=lambda *_: None)
    assert await checksum(conn) == live


@pytest.mark.parametrize(
    "clock",
    [
        pytest.param(3600.0, id="clock-an-hour-ahead"),
        pytest.param(-60.0, id="clock-a-minute-behind"),
    ],
)
async def test_agents_page_silence_counts_from_when_the_log_received_the_heartbeat(
    log: Log, conn: asyncpg.Connection, clock
):
    log.stack.projector()
    sent = time.time()
    await log.publish(_beat(clock, in_flight=1))
    await log.folded(conn)
    a = await _one_agent(conn)
    assert 0 <= a["silent_for"] <= time.time() - sent
    # Its clock is shown for what it is: ahead or behind the log's.
    assert round(float(a["clock_offset"]) / clock) == 1
    await add_user(log.database_url, "ops", "s3cret")
    async with web_server(log.database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        assert (await login(c, "ops", "s3cret")).status_code == 303
        page = (await c.get("/agents")).text
        told = r"clock \d+[smh] ahead" if clock > 0 else r"clock \d+[smh] behind"
        assert re.search(told, page) and 'sev-critical">lost' not in page
        (api,) = (await c.get("/api/agents")).json()
        assert api["silent_for"] >= 0 and round(api["clock_offset"] / clock) == 1
    # Its next heartbeat, its clock right again, is its latest.
    await log.publish(_beat(0.0, in_flight=2))
    await log.folded(conn)
    a = await _one_agent(conn)
    assert a["in_flight"] == 2 and abs(float(a["clock_offset"])) < abs(clock) / 2
    await _rebuilt_alike(log, conn)


async def test_hosts_page_silence_counts_from_when_the_log_received_the_figures(
    log: Log, conn: asyncpg.Connection
):
    log.stack.projector()
    sent = time.time()
    await log.publish(_obs(time.time() + 3600, cpu_percent=1.0))
    await log.folded(conn)
    h = await _one_host(conn)
    assert 0 <= h["silent_for"] <= time.time() - sent and not h["silent"]
    # The next figures, its clock right again, are its latest.
    await log.publish(_obs(time.time(), cpu_percent=2.0))
    await log.folded(conn)
    assert (await _one_host(conn))["cpu_percent"] == 2.0
    await _rebuilt_alike(log, conn)


@pytest.mark.parametrize(
    ("older_by", "one_batch"),
    [
        pytest.param(540.0, True, id="replayed-nine-minutes-old-in-the-same-batch"),
        pytest.param(540.0, False, id="replayed-nine-minutes-old-in-a-later-batch"),
        pytest.param(20.0, False, id="late-by-two-intervals-in-a-later-batch"),
    ],
)
async def test_older_figures_landing_later_do_not_replace_the_latest(
    log: Log, conn: asyncpg.Connection, older_by, one_batch
):
    now = time.time()
    newer, older = _obs(now, cpu_percent=5.0), _obs(now - older_by, cpu_percent=99.0)
    if one_batch:
        await log.publish(newer, older)
        log.stack.projector()
    else:
        log.stack.projector()
        await log.publish(newer)
        await log.folded(conn)
        await log.publish(older)
    await log.folded(conn)
    h = await _one_host(conn)
    assert h["cpu_percent"] == 5.0 and not h["silent"]
    await _rebuilt_alike(log, conn)
