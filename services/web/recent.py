"""Queries of a task's recent history for the dashboard and the task pages: heartbeat
strips, severity changes, the first result, the notes on incidents. Each is bounded by the
tasks shown (a primary-key range per task), never by the length of the history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg


async def heartbeats(
    conn: asyncpg.Connection, task_ids: list[str], n: int = 30
) -> dict[str, list[dict[str, Any]]]:
    """The last ``n`` results of each task, oldest first: one backward scan of the
    primary key per task, so it costs the same however long the history is."""
    rows = await conn.fetch(
        """SELECT t.id AS task_id, r.seq, r.checked_at, r.status, r.response_ms, r.http_status
           FROM unnest($1::text[]) AS t(id) CROSS JOIN LATERAL (
             SELECT seq, checked_at, status, response_ms, http_status FROM results
             WHERE task_id = t.id ORDER BY seq DESC LIMIT $2) r
           ORDER BY 1, 2""",
        task_ids,
        n,
    )
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in task_ids}
    for r in rows:
        out[r["task_id"]].append(dict(r))
    return out


async def changes_since(
    conn: asyncpg.Connection, task_ids: list[str], since: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Each task's severity changes from ``since`` on, oldest first, preceded by the last
    one before ``since`` (the severity the window starts with)."""
    # Per task, a range of its primary key (task_id, seq): from the last change before
    # ``since`` on. One ANY() over all tasks would let the planner scan the whole table.
    rows = await conn.fetch(
        """SELECT t.id AS task_id, c.seq, c.at, c.severity
           FROM unnest($1::text[]) AS t(id) CROSS JOIN LATERAL (
             SELECT seq, at, severity FROM severity_changes
             WHERE task_id = t.id AND seq >= coalesce(
               (SELECT p.seq FROM severity_changes p WHERE p.task_id = t.id AND p.at < $2
                ORDER BY p.seq DESC LIMIT 1), 0)
             ORDER BY seq) c""",
        task_ids,
        since,
    )
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in task_ids}
    for r in rows:
        out[r["task_id"]].append(dict(r))
    return out


async def first_result_at(conn: asyncpg.Connection, task_ids: list[str]) -> datetime | None:
    """When the oldest result of these tasks was checked (primary key: one probe per task)."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """SELECT min(r.checked_at) FROM unnest($1::text[]) AS t(id) CROSS JOIN LATERAL (
             SELECT checked_at FROM results WHERE task_id = t.id ORDER BY seq LIMIT 1) r""",
        task_ids,
    )


async def attach_notes(conn: asyncpg.Connection, incidents: list[dict[str, Any]]) -> None:
    """Adds to each incident the notifications sent for its task while it lasted and the
    silences that overlapped it (``notes``, oldest first), for the incidents timeline."""
    if not incidents:
        return
    ids = list({i["task_id"] for i in incidents})
    since = min(i["start"] for i in incidents)
    sent = await conn.fetch(
        """SELECT task_id, at, outcome, channel, recipient, severity FROM notifications
           WHERE task_id = ANY($1) AND at >= $2 ORDER BY at""",
        ids,
        since,
    )
    silences = await conn.fetch(
        """SELECT s.starts_at, s.ends_at, s.reason, s.created_by, s.task_id, s.domain
           FROM silences s WHERE s.removed_at IS NULL AND s.ends_at >= $2
             AND (s.task_id = ANY($1) OR s.domain IN
                  (SELECT domain FROM tasks WHERE id = ANY($1)))""",
        ids,
        since,
    )
    for i in incidents:
        end = i["end"] or datetime.now(i["start"].tzinfo)
        notes = [
            {
                "at": n["at"],
                "text": f"{n['severity']} notification {n['outcome']} via "
                f"{n['channel']} to {n['recipient']}",
            }
            for n in sent
            if n["task_id"] == i["task_id"] and i["start"] <= n["at"] <= end
        ]
        notes += [
            {"at": x["starts_at"], "text": f"silenced by {x['created_by']}: {x['reason']}"}
            for x in silences
            if (x["task_id"] == i["task_id"] or x["domain"] == i["domain"])
            and x["starts_at"] <= end
            and x["ends_at"] >= i["start"]
        ]
        i["notes"] = sorted(notes, key=lambda n: n["at"])


async def quantiles(
    conn: asyncpg.Connection, task_ids: list[str], span: timedelta
) -> tuple[float | None, float | None]:
    """p50 and p95 of the successful results' response times over ``span``."""
    q = await conn.fetchval(
        """SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY response_ms)
           FROM results WHERE task_id = ANY($1) AND checked_at > now() - $2::interval
             AND status = 'success'""",
        task_ids,
        span,
    )
    return (q[0], q[1]) if q else (None, None)
