"""The notifier's PostgreSQL state: decisions, the outbox, events waiting to be published."""

from __future__ import annotations

import time
from importlib import resources

import asyncpg
import msgspec

from events import codec, subjects
from events.types import Event
from runtime import db
from services.notifier import grouping
from services.notifier.message import Message, outcome
from services.notifier.settings import NotifySettings

S = "tocsin_notifier"
LOCK = 7_361_077  # serialises schema creation between notifiers starting together


async def ensure_schema(conn: asyncpg.Connection) -> None:
    sql = resources.files("services.notifier").joinpath("schema.sql").read_text()
    await db.ensure_ddl(conn, S, sql, LOCK)


async def last_told(conn: asyncpg.Connection, task: str) -> list[tuple[str, str, Message]]:
    """Per channel and recipient, the latest notification queued about ``task``."""
    rows = await conn.fetch(
        f"""SELECT DISTINCT ON (channel, recipient) channel, recipient, message
            FROM {S}.outbox WHERE about = $1
            ORDER BY channel, recipient, seq DESC, created_at DESC, key DESC""",
        task,
    )
    return [
        (r["channel"], r["recipient"], msgspec.json.decode(r["message"], type=Message))
        for r in rows
    ]


def about(m: Message) -> str | None:
    """What a notification's news is about: its task, the agents (no agent, agents back) or a
    location (degraded, healthy). A newer row about the same thing for the same recipient
    makes an older one stale; None (a test notification): nothing does."""
    if m.task:
        return m.task
    if m.kind in ("no_agent", "agents_back"):
        return "agents"
    if m.kind in ("location_degraded", "location_healthy"):
        return f"location:{m.group}"
    return None


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
    the other rows of its group (grouping.py). The older rows about the same thing for the
    same recipient that are not in flight are superseded at once (``supersede``)."""
    subject = about(m)
    status = await conn.execute(
        f"INSERT INTO {S}.outbox (key, channel, recipient, message, grp, next_attempt_at, "
        "about, seq) VALUES ($1, $2, $3, $4::jsonb, $5, coalesce(to_timestamp($6), now()), "
        "$7, $8) ON CONFLICT (key) DO NOTHING",
        key,
        channel,
        recipient,
        msgspec.json.encode(m).decode(),
        grp,
        due,
        subject,
        m.source_seq,
    )
    if subject is not None:
        await supersede(conn, (channel, recipient, subject))
    return bool(status.endswith(" 1"))


#: Unsent rows not in flight (never claimed, failed, postponed, or claimed by a notifier
#: that died: its lease ran out) for which a later row about the same thing for the same
#: recipient exists, sent or not: what they say is stale. The order is the log's (the
#: judgement's stream sequence), then the outbox's.
_SUPERSEDE = f"""
WITH stale AS (
    SELECT o.key, n.key AS newer FROM {S}.outbox o
    CROSS JOIN LATERAL (
        SELECT n.key FROM {S}.outbox n
        WHERE n.channel = o.channel AND n.recipient = o.recipient AND n.about = o.about
          AND (n.seq, n.created_at, n.key) > (o.seq, o.created_at, o.key)
        ORDER BY n.seq DESC, n.created_at DESC, n.key DESC LIMIT 1) n
    WHERE o.about IS NOT NULL AND o.sent_at IS NULL AND o.given_up_at IS NULL
      AND (o.claimed_until IS NULL OR o.claimed_until < now())
      AND ($1::text IS NULL OR (o.channel, o.recipient, o.about) = ($1, $2, $3))
    FOR UPDATE OF o SKIP LOCKED)
UPDATE {S}.outbox SET given_up_at = now(), claimed_until = NULL,
       last_error = 'superseded by ' || stale.newer
FROM stale WHERE {S}.outbox.key = stale.key
RETURNING {S}.outbox.key, channel, recipient, message, attempts, last_error"""


async def supersede(
    conn: asyncpg.Connection, only: tuple[str, str, str] | None = None
) -> list[str]:
    """Give up the stale rows (of one channel, recipient and subject, or all), each recorded
    as a final failure saying which row superseded it; their keys. Call in a transaction."""
    rows = await conn.fetch(_SUPERSEDE, *(only or (None, None, None)))
    now = time.time()
    for r in rows:
        m = msgspec.json.decode(r["message"], type=Message)
        key, error = r["key"], r["last_error"]
        ev = outcome(m, key, r["channel"], r["recipient"], r["attempts"], now, error, None)
        await _pending(conn, *_event_row(ev, "failed", f"notification.failed.{key}.superseded"))
    return [r["key"] for r in rows]


async def enqueue_grouped(
    conn: asyncpg.Connection,
    s: NotifySettings,
    key: str,
    channel: str,
    recipient: str,
    m: Message,
) -> bool:
    """Queue ``m`` under ``key``: to go out at once, or with the open group of its channel's
    ``group_window`` (grouping.py)."""
    window = s.group_windows.get(channel)
    grp = grouping.group_key(s, m) if window and m.task else None
    due = None
    if grp is not None and window:
        opened = await open_group(conn, channel, recipient, grp)
        due = grouping.deadline(opened, time.time(), window)
    return await enqueue(
        conn, key, channel, recipient, msgspec.structs.replace(m, key=key), grp, due
    )


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


#: A row that may go out now: unsent, due, not in flight, and no older row about the same
#: thing for the same recipient is in flight (it goes first: a receiver gets the changes of
#: a task in order). Stale rows are superseded before (``supersede``), so the row claimed is
#: the latest of its subject.
_CLAIMABLE = f"""o.sent_at IS NULL AND o.given_up_at IS NULL AND o.next_attempt_at <= now()
    AND (o.claimed_until IS NULL OR o.claimed_until < now())
    AND NOT EXISTS (SELECT 1 FROM {S}.outbox b
                    WHERE b.channel = o.channel AND b.recipient = o.recipient
                      AND b.about = o.about AND b.key <> o.key
                      AND b.sent_at IS NULL AND b.given_up_at IS NULL
                      AND b.claimed_until >= now())"""


async def _claiming(conn: asyncpg.Connection) -> None:
    """One notifier at a time claims (transaction-scoped), after superseding what is stale:
    a claim sees the rows the other notifiers claimed, so two rows about one thing are never
    in flight together."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tocsin-claim'))")
    await supersede(conn)


async def claim_group(
    conn: asyncpg.Connection, row: asyncpg.Record, lease: float
) -> list[asyncpg.Record]:
    """The other due rows of ``row``'s group, claimed to go out in one message with it."""
    async with conn.transaction():
        await _claiming(conn)
        return await conn.fetch(
            f"""UPDATE {S}.outbox SET claimed_until = now() + make_interval(secs => $5),
                   attempts = attempts + 1
                WHERE key IN (SELECT o.key FROM {S}.outbox o
                              WHERE o.channel = $2 AND o.recipient = $3 AND o.grp = $4
                                AND o.key <> $1 AND {_CLAIMABLE}
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
    async with conn.transaction():
        await _claiming(conn)
        return await conn.fetch(
            f"""UPDATE {S}.outbox SET claimed_until = now() + make_interval(secs => $2),
                   attempts = attempts + 1
                WHERE key IN (SELECT o.key FROM {S}.outbox o WHERE {_CLAIMABLE}
                              ORDER BY o.next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                  AND sent_at IS NULL
                RETURNING key, channel, recipient, message, attempts, grp,
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
        subject = about(m)
        if retry_in is not None and subject is not None:
            # No retry of what a newer row about the same thing already says.
            await supersede(conn, (channel, recipient, subject))


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
