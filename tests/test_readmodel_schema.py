"""Creating the schemas at start never deadlocks with a service writing them.

A web service starting while the projector writes a batch deadlocked: its
``CREATE INDEX IF NOT EXISTS`` locked a table the batch was about to write, while waiting
for a table the batch held. A current schema now runs no DDL at all, and an upgrade
waits on the writers' advisory lock before it touches a table.
"""

from __future__ import annotations

import asyncio

import asyncpg

from readmodel import SCHEMA, WRITE_LOCK, ensure_schema
from runtime import db
from tests.helpers import wait_for


async def test_a_current_schema_takes_no_table_lock(database_url):
    conn = await asyncpg.connect(database_url)
    writer = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn)
        async with writer.transaction():
            await writer.execute(f'LOCK TABLE "{SCHEMA}".tasks IN ROW EXCLUSIVE MODE')
            # Waiting for a table lock here would be the first half of the deadlock.
            await conn.execute("SET lock_timeout = '3s'")
            await ensure_schema(conn)
    finally:
        await conn.close()
        await writer.close()


async def _waits_on(conn: asyncpg.Connection, pid: int, locktype: str) -> bool:
    rows = await conn.fetch("SELECT locktype FROM pg_locks WHERE pid = $1 AND NOT granted", pid)
    return [r["locktype"] for r in rows] == [locktype]


async def test_an_upgrade_waits_for_the_batch_instead_of_deadlocking_with_it(database_url):
    setup = await asyncpg.connect(database_url)
    batch = await asyncpg.connect(database_url)
    starting = await asyncpg.connect(database_url)
    try:
        await ensure_schema(setup)
        await setup.execute(f'COMMENT ON SCHEMA "{SCHEMA}" IS NULL')  # as before an upgrade
        async with batch.transaction():
            await batch.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            await batch.execute(f'LOCK TABLE "{SCHEMA}".tasks IN ROW EXCLUSIVE MODE')
            upgrade = asyncio.create_task(ensure_schema(starting))
            pid = starting.get_server_pid()
            await wait_for(lambda: _waits_on(setup, pid, "advisory"), what="the upgrade waiting")
            # The batch goes on with the other tables the upgrade would have locked.
            await batch.execute(f'LOCK TABLE "{SCHEMA}".results IN ROW EXCLUSIVE MODE')
            await batch.execute(f'LOCK TABLE "{SCHEMA}".requests IN ROW EXCLUSIVE MODE')
        await upgrade
        assert await setup.fetchval(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1",
            SCHEMA,
        )
    finally:
        await setup.close()
        await batch.close()
        await starting.close()


async def test_the_ddl_runs_once_per_version(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        ddl = "CREATE SCHEMA IF NOT EXISTS s1; CREATE TABLE IF NOT EXISTS s1.t (a int);"
        assert await db.ensure_ddl(conn, "s1", ddl, 1)
        assert not await db.ensure_ddl(conn, "s1", ddl, 1)
        # A new version of the text runs again (migrations live in the DDL itself).
        assert await db.ensure_ddl(conn, "s1", ddl + " ALTER TABLE s1.t ADD COLUMN b int;", 1)
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_schema = 's1' AND table_name = 't'"
            )
            == 2
        )
    finally:
        await conn.close()
