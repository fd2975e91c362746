"""Each task's state in PostgreSQL (``tocsin_notifier.task_state``): the last judgement
applied, what each channel was told in the current failure episode, the severity judged and
since when, the group judged. Row-locked while a judgement (or a retirement) is decided."""

from __future__ import annotations

import asyncpg
import msgspec

from services.notifier.decide import TaskState, Told
from services.notifier.store import S


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


async def save_state(
    conn: asyncpg.Connection, task: str, seq: int, state: TaskState, grp: str | None = None
) -> None:
    """``grp``: the group of the judgement (None: keep the one recorded)."""
    await conn.execute(
        f"UPDATE {S}.task_state SET last_seq = $2, told = $3::jsonb, severity = $4, since = $5, "
        "grp = coalesce($6, grp) WHERE task = $1",
        task,
        seq,
        msgspec.json.encode(state.told).decode(),
        state.severity,
        state.since,
        grp,
    )


async def told_tasks(conn: asyncpg.Connection) -> dict[str, str | None]:
    """The tasks some channel was told have failed (their episode is open) and the group
    of their last judgement."""
    rows = await conn.fetch(f"SELECT task, grp FROM {S}.task_state WHERE told <> '{{}}'::jsonb")
    return {r["task"]: r["grp"] for r in rows}


async def severities(conn: asyncpg.Connection, tasks: list[str]) -> dict[str, str]:
    """The last severity the notifier saw for each task (what dependencies are judged by)."""
    rows = await conn.fetch(
        f"SELECT task, severity FROM {S}.task_state WHERE task = ANY($1)", tasks
    )
    return {r["task"]: r["severity"] for r in rows}
