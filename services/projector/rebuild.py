"""``tocsin projector rebuild``: replay the whole log into fresh tables, then swap them in.

The fresh schema is filled while the live projector keeps running. The last
stretch is replayed under the projector's write lock, so the swapped-in
tables contain every event the live ones did, and the live projector simply
carries on from the position the new tables hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Callable

import asyncpg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events import streams
from readmodel import SCHEMA, WRITE_LOCK, ensure_schema
from runtime import bus, db
from runtime.framepull import Pull
from services.projector.decoding import Batch, decode_batch
from services.projector.feed import Feed
from services.projector.service import apply_refusing

FRESH = f"{SCHEMA}_rebuild"
OLD = f"{SCHEMA}_old"

#: Indexes that only readers use (the web's pages, staleness, pruning), never a statement of
#: the fold: the fresh tables are filled without them, and each is built once, by one sort,
#: before the swap. A btree insert per row cost more: PostgreSQL's CPU per event of a replay
#: fell from 11.1-11.6 to 9.6-9.7 µs, building them after took 0.6-0.7.
READERS_ONLY = (
    "results_seq",
    "results_checked_at",
    "requests_grp",
    "requests_requested_at",
    "severity_changes_seq",
)


def print_progress(done: int, total: int, rate: float) -> None:
    pct = 100.0 * done / total if total else 100.0
    sys.stderr.write(f"\rrebuild: {done:,}/{total:,} events ({pct:5.1f}%) {rate:,.0f} events/s")
    sys.stderr.flush()


async def rebuild(
    nats_url: str,
    database_url: str,
    batch: int = 20000,
    progress: Callable[[int, int, float], None] = print_progress,
) -> int:
    """Returns the stream sequence the rebuilt tables reach."""
    conn = await db.connect_once(database_url)
    async with contextlib.AsyncExitStack() as closing:
        closing.push_async_callback(conn.close)
        nc = await closing.enter_async_context(bus.oneshot(nats_url, "projector-rebuild"))
        js = nc.jetstream()
        await ensure_schema(conn)  # a fresh database (after a restore) has none to swap out
        await conn.execute(f'DROP SCHEMA IF EXISTS "{FRESH}" CASCADE')
        await ensure_schema(conn, FRESH)
        deferred = await drop_readers_indexes(conn, FRESH)
        # The fresh tables are thrown away unless the swap commits, and a rebuild that dies
        # starts over: their batches need not wait for the WAL to reach the disk (a commit
        # waited 0.1 s on a loaded machine). The swap itself does.
        await conn.execute("SET synchronous_commit TO off")
        consumer = f"rebuild-{uuid.uuid4().hex[:12]}"
        await js.add_consumer(
            streams.EVENTS,
            ConsumerConfig(
                name=consumer,
                filter_subject=">",
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=120.0,
                max_ack_pending=-1,
            ),
        )
        pull = await Pull(nc, streams.EVENTS, consumer).start()
        start = time.monotonic()
        done = 0
        reached = 0

        async def fetched(n: int) -> tuple[int, Batch]:
            msgs = await pull.fetch(n, timeout=10)
            return msgs[-1].metadata.sequence.stream, await decode_batch(msgs)

        async def apply(events: Batch) -> None:
            nonlocal done
            await apply_refusing(conn, events, schema=FRESH, notify=False)
            done += len(events)
            progress(done, total, done / max(time.monotonic() - start, 1e-6))

        async def catch_up(until: int) -> None:
            """Replay up to ``until``, fetching and decoding the next batch while PostgreSQL
            writes this one."""
            nonlocal reached
            if reached >= until:
                return
            ahead = asyncio.create_task(fetched(min(batch, until - reached)))
            try:
                while reached < until:
                    reached, events = await ahead
                    if reached < until:
                        ahead = asyncio.create_task(fetched(min(batch, until - reached)))
                    await apply(events)
            finally:
                ahead.cancel()

        async def fed(until: int) -> None:
            """Replay up to ``until`` from the feed process (``feed``): the log pulled and
            checked on another core while this one folds and writes."""
            nonlocal reached
            if until <= 0:
                return
            source = await Feed(nats_url, consumer, until, batch).start()
            try:
                ahead = asyncio.create_task(source.next())
                while (got := await ahead) is not None:
                    ahead = asyncio.create_task(source.next())
                    reached, events = got
                    await apply(events)
            finally:
                ahead.cancel()
                await source.close()

        total = (await js.stream_info(streams.EVENTS)).state.last_seq
        await fed(total)
        for ddl in deferred:  # built before the lock: the live projector carries on meanwhile
            await conn.execute(ddl)
        async with conn.transaction():
            # Hold the live projector still, take what arrived meanwhile, then swap.
            await conn.execute("SET LOCAL synchronous_commit TO on")
            await conn.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
            total = (await js.stream_info(streams.EVENTS)).state.last_seq
            await catch_up(total)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{OLD}" CASCADE')
            await conn.execute(f'ALTER SCHEMA "{SCHEMA}" RENAME TO "{OLD}"')
            await conn.execute(f'ALTER SCHEMA "{FRESH}" RENAME TO "{SCHEMA}"')
            await conn.execute(f'DROP SCHEMA "{OLD}" CASCADE')
            await conn.execute("SELECT pg_notify('tocsin_changed', '{\"rebuild\": true}')")
        await pull.close()
        await js.delete_consumer(streams.EVENTS, consumer)
        if progress is print_progress:
            sys.stderr.write("\n")
        return reached


async def drop_readers_indexes(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Drop ``READERS_ONLY`` from ``schema``; returns the statements that build them again."""
    rows = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = $1 AND indexname = ANY($2::text[]) ORDER BY indexname",
        schema,
        list(READERS_ONLY),
    )
    for row in rows:
        await conn.execute(f'DROP INDEX "{schema}"."{row["indexname"]}"')
    return [row["indexdef"] for row in rows]


async def checksum(conn: asyncpg.Connection, schema: str = SCHEMA) -> dict[str, str]:
    """An md5 per read-model table, for comparing a live projection with a rebuilt one."""
    queries = {
        "tasks": "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM "
        "(SELECT id, severity, severity_since, reason, failures, last_status, "
        "last_checked_at, last_result_seq, next_run, removed_at FROM {s}.tasks) t",
        "results": "SELECT md5(string_agg(r::text, '|' ORDER BY task_id, seq)) FROM {s}.results r",
        "severity_changes": "SELECT md5(string_agg(r::text, '|' ORDER BY task_id, seq)) "
        "FROM {s}.severity_changes r",
        "dead_letters": "SELECT md5(string_agg(r::text, '|' ORDER BY seq)) FROM {s}.dead_letters r",
        "requests": "SELECT md5(string_agg(r::text, '|' ORDER BY id)) FROM {s}.requests r",
        "agents": "SELECT md5(string_agg(r::text, '|' ORDER BY name)) FROM {s}.agents r",
        "config_history": "SELECT md5(string_agg(r::text, '|' ORDER BY seq)) "
        "FROM {s}.config_history r",
        "hosts": "SELECT md5(string_agg(r::text, '|' ORDER BY agent)) FROM {s}.hosts r",
        "host_samples": "SELECT md5(string_agg(r::text, '|' ORDER BY seq)) FROM {s}.host_samples r",
    }
    return {
        name: await conn.fetchval(q.format(s=f'"{schema}"')) or "" for name, q in queries.items()
    }
