"""A rebuild fills its fresh tables without the readers' indexes (``READERS_ONLY``) and
builds them before the swap: the swapped-in read models have every index the schema makes."""

from __future__ import annotations

import asyncpg
import nats

from events import codec, contract, streams
from readmodel import SCHEMA, ensure_schema
from runtime.embedded import NatsServer
from services.projector.rebuild import READERS_ONLY, rebuild
from tests.test_events import SAMPLES


async def _indexes(conn: asyncpg.Connection, schema: str) -> set[tuple[str, str, str]]:
    rows = await conn.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1", schema
    )
    return {
        (r["tablename"], r["indexname"], r["indexdef"].replace(f"{schema}.", "S.")) for r in rows
    }


async def test_a_rebuild_swaps_in_every_index_of_the_schema(
    nats_server: NatsServer, database_url: str
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, [])
    for event in SAMPLES:
        await js.publish(contract.subject_of(event), codec.encode(event))
    await nc.close()
    conn = await asyncpg.connect(database_url)
    try:
        await rebuild(nats_server.url, database_url, progress=lambda *a: None)
        await ensure_schema(conn, "expected")
        expected = await _indexes(conn, "expected")
        assert set(READERS_ONLY) <= {name for _, name, _ in expected}
        assert await _indexes(conn, SCHEMA) == expected
        assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.results") > 0
    finally:
        await conn.close()
