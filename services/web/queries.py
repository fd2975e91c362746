"""Read-model queries of the web pages and API: small, each returning plain rows."""

from __future__ import annotations

from typing import Any

import asyncpg

SEVERITY_ORDER = "CASE coalesce(severity, 'pending') WHEN 'critical' THEN 0 WHEN 'unknown' THEN 1 " \
                 "WHEN 'warning' THEN 2 WHEN 'pending' THEN 3 ELSE 4 END"

TASK_COLUMNS = """id, domain, url, method, ip_version, check_kind AS check, expected, frequency,
    coalesce(severity, 'pending') AS severity, severity_since, reason, failures,
    last_status, last_detail, last_checked_at, http_status, response_ms, next_run, last_agent"""


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT coalesce(severity, 'pending') AS s, count(*) AS n FROM tasks "
        "WHERE removed_at IS NULL GROUP BY 1")
    out = {"ok": 0, "warning": 0, "critical": 0, "unknown": 0, "pending": 0}
    out.update({r["s"]: r["n"] for r in rows})
    return out


async def tasks(conn: asyncpg.Connection, q: str = "", severity: str = "", limit: int = 200,
                offset: int = 0) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {TASK_COLUMNS} FROM tasks
            WHERE removed_at IS NULL
              AND ($1 = '' OR url ILIKE '%' || $1 || '%' OR check_kind ILIKE '%' || $1 || '%')
              AND ($2 = '' OR coalesce(severity, 'pending') = $2)
            ORDER BY {SEVERITY_ORDER}, domain, url, check_kind, ip_version
            LIMIT $3 OFFSET $4""",
        q, severity, limit, offset)
    return [dict(r) for r in rows]


async def total(conn: asyncpg.Connection, q: str = "", severity: str = "") -> int:
    return int(await conn.fetchval(
        """SELECT count(*) FROM tasks WHERE removed_at IS NULL
             AND ($1 = '' OR url ILIKE '%' || $1 || '%' OR check_kind ILIKE '%' || $1 || '%')
             AND ($2 = '' OR coalesce(severity, 'pending') = $2)""", q, severity))


async def position(conn: asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT seq, undecodable, updated_at FROM position "
                              "WHERE name = 'events'")
    return dict(row) if row else {}
