"""``ensure_schema`` (every service's start) waits for a projector batch in progress: its DDL
once deadlocked with a batch's row locks, and the web died at start (seen under load)."""

from __future__ import annotations

import asyncio

import asyncpg

from readmodel import WRITE_LOCK, ensure_schema
from tests.helpers import wait_for


async def test_ensure_schema_waits_for_the_batch_in_progress(database_url: str) -> None:
    batch = await asyncpg.connect(database_url)
    other = await asyncpg.connect(database_url)
    try:
        await ensure_schema(batch)
        tx = batch.transaction()
        await tx.start()
        await batch.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")  # as a batch does
        starting = asyncio.create_task(ensure_schema(other))

        async def waiting_or_done() -> str:
            if starting.done():
                return "done"
            locks = await batch.fetch(
                "SELECT locktype FROM pg_locks WHERE pid = $1 AND NOT granted",
                other.get_server_pid(),
            )
            return locks[0]["locktype"] if locks else ""

        # Before the fix it went on with its DDL beside the batch's writes.
        assert await wait_for(waiting_or_done, 30, 0.05, what="ensure_schema") == "advisory"
        await tx.commit()
        await asyncio.wait_for(starting, 30)
    finally:
        await batch.close()
        await other.close()
