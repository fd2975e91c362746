"""PostgreSQL, then NATS, restarted while the projector folds a long log in large batches:
some restart lands in the middle of a batch's transaction. Every completion of the log is in
``results`` exactly once (counted against the log), none is turned into a dead letter, and
the projector never acknowledges past an event it has not applied."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import pytest

from events import codec, streams, subjects
from events.types import CheckCompleted, CheckOutcome, CheckRequested, CheckSpec, Observation
from readmodel import WRITE_LOCK
from runtime.embedded import NatsServer, PostgresServer
from tests.faults.harness import Services, count, last_seq, projected_seq, wait_projected
from tests.helpers import wait_for

REQUESTS = 15000
GROUPS = 40


@pytest.fixture
async def own_pg(tmp_path: Path) -> AsyncIterator[PostgresServer]:
    server = PostgresServer(tmp_path / "pg").start()
    yield server
    server.stop()


def _pair(i: int, now: float) -> list[tuple[str, bytes]]:
    group = f"g{i % GROUPS}"
    rid = f"{group}.default.{i}"
    tasks = [f"{group}-a", f"{group}-b"]
    req = CheckRequested(
        at=now,
        request=rid,
        group=group,
        location="default",
        url="http://127.0.0.1:9/",
        method="GET",
        ip_version=4,
        timeout=5.0,
        due=now,
        checks=[CheckSpec(t, "status-is", 200) for t in tasks],
    )
    done = CheckCompleted(
        at=now,
        request=rid,
        group=group,
        agent="a1",
        location="default",
        started=now,
        observation=Observation(status=200, elapsed_ms=1.0),
        outcomes=[CheckOutcome(t, "status-is", "success") for t in tasks],
    )
    return [
        (subjects.requested("default", group), codec.encode(req)),
        (subjects.completed("a1", "default", group), codec.encode(done)),
    ]


async def _fill_log(url: str, part: range) -> None:
    """Publish the pairs of the requests numbered ``part``."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await streams.ensure(js, [])
    now = time.time()
    pending = []
    for i in part:
        for subject, data in _pair(i, now):
            pending.append(await js.publish_async(subject, data))
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    await nc.close()


async def test_restarts_in_the_middle_of_batches_lose_and_double_nothing(
    nats_server: NatsServer, own_pg: PostgresServer, tmp_path: Path
):
    # A third of the log first, then a third while each restart's lock is held: a batch is
    # sure to be waiting inside its transaction however quickly the projector folds the rest.
    parts = [range(i, min(i + REQUESTS // 3, REQUESTS)) for i in range(0, REQUESTS, REQUESTS // 3)]
    await _fill_log(nats_server.url, parts[0])
    (tmp_path / "logs").mkdir()
    svc = Services(nats_server.url, own_pg.url, tmp_path / "none.yaml", tmp_path / "logs")
    rng = random.Random(3)
    try:
        projector = svc.projector()
        await wait_for(lambda: projected_seq_or_0(own_pg.url), 60, what="a first batch")
        for part in parts[1:]:
            # Held still inside its transaction (waiting for the write lock a rebuild also
            # takes), then PostgreSQL goes away under it: a restart in the middle of a batch.
            blocker = await asyncpg.connect(own_pg.url)
            await blocker.execute(f"SELECT pg_advisory_lock({WRITE_LOCK})")
            await _fill_log(nats_server.url, part)
            await wait_for(functools.partial(_waiting_for_the_lock, blocker), 30, what="a batch")
            own_pg.stop()
            blocker.terminate()
            own_pg.start()
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            assert projector.alive, projector.output()[-3000:]
        await asyncio.sleep(rng.uniform(0.1, 0.6))
        nats_server.stop()
        await asyncio.sleep(2)
        nats_server.start()
        await wait_projected(nats_server.url, own_pg.url, 120)
        assert projector.alive, projector.output()[-3000:]
        assert await last_seq(nats_server.url) == 2 * REQUESTS
        # Counted against the log: two results per completion, each once; no dead letter.
        assert await count(own_pg.url, "SELECT count(*) FROM results") == 2 * REQUESTS
        assert await count(own_pg.url, "SELECT count(DISTINCT seq) FROM results") == REQUESTS
        assert await count(own_pg.url, "SELECT count(*) FROM dead_letters") == 0
        assert (
            await count(own_pg.url, "SELECT count(*) FROM requests WHERE status = 'completed'")
            == REQUESTS
        )
    finally:
        await svc.close()


async def _waiting_for_the_lock(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%pg_advisory_xact_lock%'"
        )
    )


async def projected_seq_or_0(url: str) -> int:
    try:
        return await projected_seq(url)
    except Exception:
        return 0
