"""PostgreSQL connections that wait for the server instead of failing at start."""

from __future__ import annotations

import asyncio

import asyncpg

from runtime.logs import Log

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


async def pool(dsn: str, **kwargs: object) -> asyncpg.Pool:
    delay = 0.2
    while True:
        try:
            return await asyncpg.create_pool(dsn, **kwargs)  # type: ignore[arg-type]
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("postgres unavailable, retrying", error=str(exc), delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
