"""PostgreSQL connections that wait for the server (a service's) or say at once why they
cannot (a one-shot command's), and schemas created once per version."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

import asyncpg

from runtime.logs import Log
from runtime.reach import Unreachable, reason, shown

log = Log("tocsin.db")


async def connect(dsn: str, attempts: int = 0, **kwargs: object) -> asyncpg.Connection:
    """Connect, retrying with backoff (forever when ``attempts`` is 0)."""
    delay = 0.2
    tried = 0
    while True:
        try:
            return await asyncpg.connect(dsn, **kwargs)  # type: ignore[arg-type]
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            tried += 1
            if attempts and tried >= attempts:
                raise
            log.warning("postgres unavailable, retrying", error=str(exc), delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


#: Seconds a one-shot command waits for PostgreSQL to answer.
ONESHOT_TIMEOUT = 10


async def connect_once(dsn: str, **kwargs: object) -> asyncpg.Connection:
    """A one-shot command's connection (``tocsin user add``): one attempt, or ``Unreachable``
    saying where and why (refused, a wrong password, no such database), never a traceback."""
    try:
        return await asyncpg.connect(dsn, timeout=ONESHOT_TIMEOUT, **kwargs)  # type: ignore[arg-type]
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unreachable(f"cannot reach PostgreSQL at {shown(dsn)}: {reason(exc)}") from None


async def pool(dsn: str, **kwargs: object) -> asyncpg.Pool:
    delay = 0.2
    while True:
        try:
            return await asyncpg.create_pool(dsn, **kwargs)  # type: ignore[arg-type]
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("postgres unavailable, retrying", error=str(exc), delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def lost(exc: BaseException) -> bool:
    """Whether ``exc`` says PostgreSQL went away (retry the same batch on a new connection),
    rather than that it refused what the batch holds."""
    if isinstance(exc, ValueError):
        # asyncpg's DataError (a value refused on our side) is also an InterfaceError.
        return False
    return isinstance(
        exc,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        # Shutting down, starting up: a restart under an open transaction.
        | asyncpg.exceptions.OperatorInterventionError,
    )


async def outliving(
    what: str, loop: Callable[[], Awaitable[None]], stopping: asyncio.Event
) -> None:
    """Run ``loop`` (one that uses PostgreSQL) until it returns or ``stopping`` is set, again
    after PostgreSQL went away (``lost``) and with backoff: a service's loop outlives a
    restarted server instead of ending the service. Anything else is raised."""
    delay = 0.2
    while not stopping.is_set():
        try:
            await loop()
            return
        except Exception as exc:
            if not lost(exc):
                raise
            log.warning(
                "postgres unavailable, retrying",
                loop=what,
                error=str(exc) or type(exc).__name__,
                delay=delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def ensure_ddl(conn: asyncpg.Connection, schema: str, ddl: str, lock: int) -> bool:
    """Run ``ddl`` (which creates ``schema``) unless this very text already ran there.

    ``CREATE INDEX IF NOT EXISTS`` and ``ALTER TABLE`` lock their table even when there is
    nothing to do, so a service starting while another writes those tables could deadlock
    with it. The DDL's digest is kept as the schema's comment: a start with the current
    schema runs no DDL at all, and an upgrade first takes ``lock``, the advisory lock every
    writer of those tables holds for its transaction, so it waits for a batch instead of
    interleaving with it. Returns whether the DDL ran.
    """
    version = "ddl " + hashlib.sha256(ddl.encode()).hexdigest()[:16]
    query = "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1"
    if await conn.fetchval(query, schema) == version:
        return False
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
        if await conn.fetchval(query, schema) == version:
            return False  # another process upgraded it while this one waited
        await conn.execute(ddl)
        await conn.execute(f"COMMENT ON SCHEMA \"{schema}\" IS '{version}'")
    return True
