"""The notifier's PostgreSQL state: decisions, the outbox, events waiting to be published."""

from __future__ import annotations

import time
from importlib import resources

import asyncpg
import msgspec

from events import codec, subjects
from events.types import Event
from runtime import db
from services.notifier.decide import TaskState, Told
from services.notifier.message import Message, outcome

S = "tocsin_notifier"
LOCK = 7_361_077  # serialises schema creation between notifiers starting together


async def ensure_schema(conn: asyncpg.Connection) -> None:
    sql = resources.files("services.notifier").joinpath("schema.sql").read_text()
    await db.ensure_ddl(conn, S, sql, LOCK)


async def lock_states(conn: asyncpg.Connection, tasks: list[str]) -> dict[str, TaskState]:
    """Row-lock each task's state (creating it), so concurrent notifiers take turns."""
    await conn.execute(
        f"INSERT INTO {S}.task_state (task) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", tasks
    )
    rows = await conn.fetch(
        f"SELECT task, last_seq, told, severity, since FROM {S}.task_state "
        "WHERE task = ANY($1) ORDER BY task FOR UPDATE",
        tasks,
    )
    return {
        r["task"]: TaskState(
            r["last_seq"],
            msgspec.json.decode(r["told"], type=dict[str, Told]),
            r["severity"],
            r["since"],
        )
        for r in rows
    }


async def save_state(conn: asyncpg.Connection, task: str, seq: int, state: TaskState) -> None:
    await conn.execute(
        f"UPDATE {S}.task_state SET last_seq = $2, told = $3::jsonb, severity = $4, since = $5 "
        "WHERE task = $1",
        task,
        seq,
        msgspec.json.encode(state.told).decode(),
        state.severity,
        state.since,
    )


async def severities(conn: asyncpg.Connection, tasks: list[str]) -> dict[str, str]:
    """The last severity the notifier saw for each task (what dependencies are judged by)."""
    rows = await conn.fetch(
        f"SELECT task, severity FROM {S}.task_state WHERE task = ANY($1)", tasks
    )
    return {r["task"]: r["severity"] for r in rows}


async def enqueue(
    conn: asyncpg.Connection,
    key: str,
    channel: str,
    recipient: str,
    m: Message,
    grp: str | None = None,
    due: float | None = None,
) -> bool:
    """Queue one notification; ``grp`` and ``due``: it waits until ``due`` to go out with
    the other rows of its group (grouping.py)."""
    status = await conn.execute(
        f"INSERT INTO {S}.outbox (key, channel, recipient, message, grp, next_attempt_at) "
        "VALUES ($1, $2, $3, $4::jsonb, $5, coalesce(to_timestamp($6), now())) "
        "ON CONFLICT (key) DO NOTHING",
        key,
        channel,
        recipient,
        msgspec.json.encode(m).decode(),
        grp,
        due,
    )
    return bool(status.endswith(" 1"))


async def open_group(
    conn: asyncpg.Connection, channel: str, recipient: str, grp: str
) -> float | None:
    """When the open window of a group closes (None: no row of it is waiting). Locks the
    group until the transaction ends, so concurrent notifiers join one window."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('tocsin-group:' || $1 || '|' || $2 || '|' || $3))",
        channel,
        recipient,
        grp,
    )
    return await conn.fetchval(  # type: ignore[no-any-return]
        f"SELECT extract(epoch FROM max(next_attempt_at))::float8 FROM {S}.outbox "
        "WHERE channel = $1 AND recipient = $2 AND grp = $3 AND sent_at IS NULL "
        "AND given_up_at IS NULL AND claimed_until IS NULL",
        channel,
        recipient,
        grp,
    )


async def claim_group(
    conn: asyncpg.Connection, row: asyncpg.Record, lease: float
) -> list[asyncpg.Record]:
    """The other due rows of ``row``'s group, claimed to go out in one message with it."""
    return await conn.fetch(
        f"""UPDATE {S}.outbox SET claimed_until = now() + make_interval(secs => $5),
               attempts = attempts + 1
            WHERE key IN (SELECT key FROM {S}.outbox
                          WHERE channel = $2 AND recipient = $3 AND grp = $4 AND key <> $1
                            AND sent_at IS NULL AND given_up_at IS NULL
                            AND next_attempt_at <= now()
                            AND (claimed_until IS NULL OR claimed_until < now())
                          FOR UPDATE SKIP LOCKED)
            RETURNING key, message, attempts""",
        row["key"],
        row["channel"],
        row["recipient"],
        row["grp"],
        lease,
    )


async def claim(conn: asyncpg.Connection, limit: int, lease: float) -> list[asyncpg.Record]:
    """Due rows, each claimed by one notifier only: the UPDATE's condition is the claim."""
    return await conn.fetch(
        f"""UPDATE {S}.outbox SET claimed_until = now() + make_interval(secs => $2),
               attempts = attempts + 1
            WHERE key IN (SELECT key FROM {S}.outbox
                          WHERE sent_at IS NULL AND given_up_at IS NULL
                            AND next_attempt_at <= now()
                            AND (claimed_until IS NULL OR claimed_until < now())
                          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
              AND sent_at IS NULL
            RETURNING key, channel, recipient, message, attempts, grp,
                      held_at IS NOT NULL AS held,
                      extract(epoch FROM created_at)::float8 AS created""",
        limit,
        lease,
    )


async def lock_channel(conn: asyncpg.Connection, channel: str) -> None:
    """Serialise rate-limit decisions on one channel across notifiers (transaction-scoped)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tocsin-rate:' || $1))", channel)


async def sent_since(conn: asyncpg.Connection, channel: str, since: float) -> list[float]:
    """When the rows the channel's rate limit let through since ``since`` were admitted."""
    rows = await conn.fetch(
        f"SELECT extract(epoch FROM admitted_at)::float8 AS t FROM {S}.outbox "
        "WHERE channel = $1 AND admitted_at > to_timestamp($2)",
        channel,
        since,
    )
    return [r["t"] for r in rows]


async def waiting_before(conn: asyncpg.Connection, key: str, channel: str) -> int:
    """How many older rows of the channel wait for its rate limit to let them through."""
    return int(
        await conn.fetchval(
            f"""SELECT count(*) FROM {S}.outbox o, {S}.outbox me
                WHERE me.key = $1 AND o.channel = $2 AND o.key <> me.key
                  AND o.sent_at IS NULL AND o.given_up_at IS NULL AND o.admitted_at IS NULL
                  AND (o.created_at, o.key) < (me.created_at, me.key)""",
            key,
            channel,
        )
    )


async def reserve(conn: asyncpg.Connection, key: str) -> None:
    # clock_timestamp(): now() is the transaction's start, before the channel lock was won.
    await conn.execute(f"UPDATE {S}.outbox SET admitted_at = clock_timestamp() WHERE key = $1", key)


async def postpone(conn: asyncpg.Connection, key: str, wait: float) -> None:
    """Back to waiting for ``wait`` seconds; a postponement is not a failed attempt."""
    await conn.execute(
        f"UPDATE {S}.outbox SET next_attempt_at = now() + make_interval(secs => $2), "
        "held_at = now(), claimed_until = NULL, attempts = greatest(attempts - 1, 0) "
        "WHERE key = $1",
        key,
        wait,
    )


async def newer_for(
    conn: asyncpg.Connection, key: str, channel: str, recipient: str, m: Message
) -> str | None:
    """The key of a later unsent row for the same task (or the same agent-wide alert) and
    recipient: it says the newer state, so this one need not be sent."""
    return await conn.fetchval(
        f"""SELECT o.key FROM {S}.outbox o, {S}.outbox me
            WHERE me.key = $1 AND o.key <> me.key AND o.channel = $2 AND o.recipient = $3
              AND o.message->>'task' IS NOT DISTINCT FROM $4
              AND o.sent_at IS NULL AND o.given_up_at IS NULL
              AND (o.created_at, o.key) > (me.created_at, me.key)
            ORDER BY o.created_at DESC LIMIT 1""",
        key,
        channel,
        recipient,
        m.task,
    )


def _event_row(ev: Event, outcome: str, msg_id: str) -> tuple[str, bytes, str]:
    return subjects.notification(outcome), codec.encode(ev), msg_id


async def mark_sent(
    conn: asyncpg.Connection, key: str, channel: str, recipient: str, m: Message, attempt: int
) -> bool:
    async with conn.transaction():
        status = await conn.execute(
            f"UPDATE {S}.outbox SET sent_at = now(), claimed_until = NULL, last_error = NULL "
            "WHERE key = $1 AND sent_at IS NULL",
            key,
        )
        if not status.endswith(" 1"):
            return False
        ev = outcome(m, key, channel, recipient, attempt, time.time())
        await _pending(conn, *_event_row(ev, "sent", f"notification.sent.{key}"))
    return True


async def mark_failed(
    conn: asyncpg.Connection,
    key: str,
    channel: str,
    recipient: str,
    m: Message,
    attempt: int,
    error: str,
    retry_in: float | None,
) -> None:
    now = time.time()
    async with conn.transaction():
        if retry_in is None:
            await conn.execute(
                f"UPDATE {S}.outbox SET given_up_at = now(), claimed_until = NULL, "
                "last_error = $2 WHERE key = $1 AND sent_at IS NULL",
                key,
                error,
            )
        else:
            await conn.execute(
                f"UPDATE {S}.outbox SET next_attempt_at = now() + make_interval(secs => $3), "
                "claimed_until = NULL, last_error = $2 WHERE key = $1 AND sent_at IS NULL",
                key,
                error,
                retry_in,
            )
        ev = outcome(m, key, channel, recipient, attempt, now, error, retry_in)
        await _pending(conn, *_event_row(ev, "failed", f"notification.failed.{key}.{attempt}"))


async def _pending(conn: asyncpg.Connection, subject: str, data: bytes, msg_id: str) -> None:
    await conn.execute(
        f"INSERT INTO {S}.pending_events (subject, data, msg_id) VALUES ($1, $2, $3)",
        subject,
        data,
        msg_id,
    )


async def pending_events(conn: asyncpg.Connection, limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT id, subject, data, msg_id FROM {S}.pending_events ORDER BY id LIMIT $1", limit
    )


async def published(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute(f"DELETE FROM {S}.pending_events WHERE id = ANY($1)", ids)


async def set_flag(conn: asyncpg.Connection, name: str, value: object) -> bool:
    """Raise a flag unless it is up: True for the one notifier that raised it."""
    status = await conn.execute(
        f"INSERT INTO {S}.flags (name, value) VALUES ($1, $2::jsonb) ON CONFLICT DO NOTHING",
        name,
        msgspec.json.encode(value).decode(),
    )
    return bool(status.endswith(" 1"))


async def get_flag(conn: asyncpg.Connection, name: str) -> object | None:
    raw = await conn.fetchval(f"SELECT value FROM {S}.flags WHERE name = $1", name)
    return None if raw is None else msgspec.json.decode(raw)


async def clear_flag(conn: asyncpg.Connection, name: str) -> object | None:
    """Lower a flag: its value for the one notifier that lowered it, else None."""
    raw = await conn.fetchval(f"DELETE FROM {S}.flags WHERE name = $1 RETURNING value", name)
    return None if raw is None else msgspec.json.decode(raw)


async def flags(conn: asyncpg.Connection, prefix: str) -> list[str]:
    rows = await conn.fetch(f"SELECT name FROM {S}.flags WHERE starts_with(name, $1)", prefix)
    return [r["name"] for r in rows]
