"""What the read model refuses is a dead letter, the same in the live projector and in a
rebuild; PostgreSQL going away is never taken for a refusal."""

from __future__ import annotations

import asyncpg
import pytest

from events.types import MonitorPinged
from readmodel import SCHEMA, ensure_schema
from runtime.db import lost
from services.projector.rebuild import FRESH
from services.projector.service import Batch, apply_refusing
from tests.test_events import SAMPLES, T


def _refused() -> MonitorPinged:
    """An event PostgreSQL refuses (a NUL in jsonb): built in memory, past the decoder's
    bounds, as an event of an older, laxer contract would be read from the log."""
    return MonitorPinged(at=T + 50.0, group="g", task="t", kind="fail", body="a\x00b")


async def _dead_letters(conn: asyncpg.Connection, schema: str) -> list[tuple[object, ...]]:
    rows = await conn.fetch(f'SELECT * FROM "{schema}".dead_letters ORDER BY seq')
    return [tuple(r.values()) for r in rows]


async def test_a_refused_event_is_the_same_dead_letter_live_and_rebuilt(database_url: str):
    events = [*SAMPLES[:3], _refused(), *SAMPLES[3:]]
    batch: Batch = [(i + 1, ev) for i, ev in enumerate(events)]
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn)
        await ensure_schema(conn, FRESH)
        assert await apply_refusing(conn, batch) == len(batch)
        assert await apply_refusing(conn, batch, schema=FRESH, notify=False) == len(batch)
        live = await _dead_letters(conn, SCHEMA)
        assert live == await _dead_letters(conn, FRESH)
        mine = [row for row in live if row[0] == 4]
        assert len(mine) == 1 and "refused by the read model" in str(mine[0][7])
        assert mine[0][1].timestamp() == T + 50.0  # dated by the event, not by the clock
        # The rest of the batch is applied around it.
        assert await conn.fetchval(f'SELECT seq FROM "{SCHEMA}".position') == len(events)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("exc", "gone"),
    [
        (asyncpg.exceptions.AdminShutdownError(), True),
        (asyncpg.exceptions.CannotConnectNowError(), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError(), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (ConnectionResetError(), True),
        (asyncpg.exceptions.UntranslatableCharacterError(), False),
        (asyncpg.exceptions.UniqueViolationError(), False),
        (asyncpg.exceptions.DataError(), False),
        (UnicodeEncodeError("utf-8", "", 0, 1, "surrogate"), False),
        (TypeError("a bug of one event's row"), False),
    ],
    ids=lambda v: type(v).__name__,
)
def test_postgres_going_away_is_not_a_refusal(exc: Exception, gone: bool):
    """A connection lost while isolating a refused batch made every event of it a dead
    letter "refused by the read model" (ConnectionDoesNotExistError is a PostgresError)."""
    assert lost(exc) is gone
