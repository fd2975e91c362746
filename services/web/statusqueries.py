"""Read-model queries of the status pages: the tasks' severities, operators' posts and
subscriptions waiting for their confirmation."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def severities(conn: asyncpg.Connection, task_ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT id, coalesce(severity, 'pending') AS s FROM tasks WHERE id = ANY($1) "
        "AND removed_at IS NULL",
        task_ids,
    )
    return {r["id"]: r["s"] for r in rows}


async def status_posts(
    conn: asyncpg.Connection, page: str, incident: str | None = None
) -> list[dict[str, Any]]:
    """Operators' posts on a status page (of one incident, if given), oldest first."""
    rows = await conn.fetch(
        """SELECT seq, incident, page, at, phase, message, by, title, components
           FROM status_posts WHERE page = $1 AND ($2::text IS NULL OR incident = $2)
           ORDER BY seq""",
        page,
        incident,
    )
    return [dict(r) | {"components": json.loads(r["components"])} for r in rows]


async def subscriber_by_token(
    conn: asyncpg.Connection, page: str, token: str
) -> dict[str, Any] | None:
    """A subscription waiting for its confirmation, by the token the mail carried."""
    r = await conn.fetchrow(
        """SELECT page, email, state FROM status_subscribers
           WHERE page = $1 AND token = $2 AND state = 'requested'""",
        page,
        token,
    )
    return dict(r) if r else None
