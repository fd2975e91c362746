"""Read-model queries of the web pages and API: small, each returning plain rows.

Every listing is bounded (LIMIT) and sorted by an indexed key or over the
tasks table only, so a page costs the same with ten tasks or ten thousand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

SEVERITIES = ("critical", "unknown", "warning", "ok", "pending")
RANK = (
    "CASE coalesce(severity, 'pending') WHEN 'critical' THEN 0 WHEN 'unknown' THEN 1 "
    "WHEN 'warning' THEN 2 WHEN 'pending' THEN 3 ELSE 4 END"
)
RANKED = ("critical", "unknown", "warning", "pending", "ok")  # by RANK's value
SEVERITY_ORDER = RANK  # the name older callers use

TASK_COLUMNS = """id, grp, domain, url, method, ip_version, check_kind AS check, expected,
    frequency, coalesce(severity, 'pending') AS severity, severity_since, reason, failures,
    last_status, last_detail, last_checked_at, last_result_seq, http_status, response_ms,
    next_run, last_agent,
    (SELECT s.reason FROM silences s
      WHERE s.removed_at IS NULL AND now() >= s.starts_at AND now() < s.ends_at
        AND (s.task_id IS NULL OR s.task_id = tasks.id)
        AND (s.domain IS NULL OR s.domain = tasks.domain)
      LIMIT 1) AS silenced"""

#: The text filter: domain, URL or check name contains the text.
_MATCH = (
    "($1 = '' OR domain ILIKE '%' || $1 || '%' OR url ILIKE '%' || $1 || '%' "
    "OR check_kind ILIKE '%' || $1 || '%')"
)


def _like_escape(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def counts(conn: asyncpg.Connection, q: str = "", domain: str = "") -> dict[str, int]:
    rows = await conn.fetch(
        f"""SELECT coalesce(severity, 'pending') AS s, count(*) AS n FROM tasks
            WHERE removed_at IS NULL AND {_MATCH} AND ($2 = '' OR domain = $2) GROUP BY 1""",
        _like_escape(q),
        domain,
    )
    out = dict.fromkeys(("ok", "warning", "critical", "unknown", "pending"), 0)
    out.update({r["s"]: r["n"] for r in rows})
    return out


async def argos_severities(conn: asyncpg.Connection) -> dict[str, int]:
    """Argos's ``/api/severities``: tasks per severity. A task not judged yet counts as
    unknown, as in Argos, whose tasks start unknown."""
    rows = await conn.fetch(
        """SELECT coalesce(severity, 'unknown') AS s, count(*) AS n FROM tasks
           WHERE removed_at IS NULL GROUP BY 1"""
    )
    out = dict.fromkeys(("ok", "warning", "critical", "unknown"), 0)
    out.update({r["s"]: r["n"] for r in rows})
    return out


async def argos_stats(conn: asyncpg.Connection) -> dict[str, int]:
    """Argos's ``/api/stats`` keys, counted as their names say (Argos 0.10.3 always answers
    0 upcoming and every task selected): selected = due, handed out and awaiting a result;
    upcoming = the others; results = results kept in the read model."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE next_run IS NULL OR next_run <= now()) AS due,
                  count(*) AS total,
                  (SELECT count(*) FROM results) AS results
           FROM tasks WHERE removed_at IS NULL"""
    )
    return {
        "upcoming_tasks_count": row["total"] - row["due"],
        "results_count": row["results"],
        "selected_tasks_count": row["due"],
    }


async def tasks(
    conn: asyncpg.Connection,
    q: str = "",
    severity: str = "",
    limit: int = 200,
    offset: int = 0,
    domain: str = "",
) -> list[dict[str, Any]]:
    """Tasks, worst first; domains ordered by their worst task so trouble is on top.

    Each row carries ``total``, the number of matching tasks, so a page is one query.
    """
    rows = await conn.fetch(
        f"""WITH f AS (
              SELECT {TASK_COLUMNS}, {RANK} AS rank FROM tasks
              WHERE removed_at IS NULL AND {_MATCH}
                AND ($2 = '' OR coalesce(severity, 'pending') = $2)
                AND ($5 = '' OR domain = $5))
            SELECT f.*, min(rank) OVER (PARTITION BY domain) AS domain_rank,
                   count(*) OVER () AS total
            FROM f ORDER BY domain_rank, domain, rank, url, "check", ip_version
            LIMIT $3 OFFSET $4""",
        _like_escape(q),
        severity,
        limit,
        offset,
        domain,
    )
    return [dict(r) for r in rows]


async def total(conn: asyncpg.Connection, q: str = "", severity: str = "") -> int:
    return int(
        await conn.fetchval(
            f"""SELECT count(*) FROM tasks WHERE removed_at IS NULL AND {_MATCH}
             AND ($2 = '' OR coalesce(severity, 'pending') = $2)""",
            _like_escape(q),
            severity,
        )
    )


async def task(conn: asyncpg.Connection, task_id: str) -> dict[str, Any] | None:
    r = await conn.fetchrow(
        f"SELECT {TASK_COLUMNS}, definition, removed_at FROM tasks WHERE id = $1", task_id
    )
    return dict(r) if r else None


async def domains(
    conn: asyncpg.Connection,
    q: str = "",
    limit: int = 100,
    offset: int = 0,
    names: list[str] | None = None,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT domain, min({RANK}) AS rank, count(*) AS tasks,
              count(*) FILTER (WHERE severity = 'ok') AS ok,
              count(*) FILTER (WHERE severity = 'warning') AS warning,
              count(*) FILTER (WHERE severity = 'critical') AS critical,
              count(*) FILTER (WHERE severity = 'unknown') AS unknown,
              count(*) FILTER (WHERE severity IS NULL) AS pending,
              avg(response_ms) AS response_ms, min(severity_since) AS since
            FROM tasks WHERE removed_at IS NULL AND {_MATCH}
              AND ($4::text[] IS NULL OR domain = ANY($4))
            GROUP BY domain ORDER BY rank, domain LIMIT $2 OFFSET $3""",
        _like_escape(q),
        limit,
        offset,
        names,
    )
    out = []
    for r in rows:
        d = dict(r)
        d["severity"] = RANKED[d["rank"]]
        out.append(d)
    return out


async def domain_tasks(conn: asyncpg.Connection, domain: str) -> list[str]:
    return [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM tasks WHERE domain = $1 AND removed_at IS NULL", domain
        )
    ]


async def results(
    conn: asyncpg.Connection,
    task_ids: list[str] | None = None,
    limit: int = 50,
    before: int | None = None,
    agent: str = "",
    status: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    before_task: str | None = None,
) -> list[dict[str, Any]]:
    """Results newest first; ``before`` (a sequence, and ``before_task`` for the results
    of one completion split between pages) pages backwards through the history."""
    rows = await conn.fetch(
        """SELECT seq, task_id, grp, agent, location, request, checked_at, status, detail,
                  value, http_status, response_ms, error
           FROM results
           WHERE ($1::text[] IS NULL OR task_id = ANY($1))
             AND ($2::bigint IS NULL OR seq < $2 OR (seq = $2 AND task_id < $8))
             AND ($3 = '' OR agent = $3) AND ($4 = '' OR status = $4)
             AND ($5::timestamptz IS NULL OR checked_at >= $5)
             AND ($6::timestamptz IS NULL OR checked_at < $6)
           ORDER BY seq DESC, task_id DESC LIMIT $7""",
        task_ids,
        before,
        agent,
        status,
        since,
        until,
        limit,
        before_task,
    )
    return [dict(r) for r in rows]


async def result(conn: asyncpg.Connection, task_id: str, seq: int) -> dict[str, Any] | None:
    r = await conn.fetchrow("SELECT * FROM results WHERE task_id = $1 AND seq = $2", task_id, seq)
    return dict(r) if r else None


async def uptime(conn: asyncpg.Connection, task_ids: list[str]) -> dict[str, float | None]:
    """Share of successful results over 24 h, 7 d and 30 d (None: no result in the window)."""
    r = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE checked_at > now() - interval '1 day') AS n1,
                  count(*) FILTER (WHERE checked_at > now() - interval '1 day'
                                   AND status = 'success') AS s1,
                  count(*) FILTER (WHERE checked_at > now() - interval '7 days') AS n7,
                  count(*) FILTER (WHERE checked_at > now() - interval '7 days'
                                   AND status = 'success') AS s7,
                  count(*) AS n30, count(*) FILTER (WHERE status = 'success') AS s30
           FROM results WHERE task_id = ANY($1) AND checked_at > now() - interval '30 days'""",
        task_ids,
    )
    return {
        k: (r[f"s{n}"] / r[f"n{n}"] * 100 if r[f"n{n}"] else None)
        for k, n in (("24h", 1), ("7d", 7), ("30d", 30))
    }


async def series(
    conn: asyncpg.Connection, task_ids: list[str], span: timedelta, buckets: int = 240
) -> list[dict[str, Any]]:
    """Response times over ``span`` in at most ``buckets`` points: average and max of the
    successful results (a failure's time says nothing of the service's speed), failures
    and results counted."""
    width = max(span / buckets, timedelta(seconds=1))
    rows = await conn.fetch(
        """SELECT date_bin($2, checked_at, timestamptz '2000-01-01') AS at,
                  avg(response_ms) FILTER (WHERE status = 'success') AS avg_ms,
                  max(response_ms) FILTER (WHERE status = 'success') AS max_ms,
                  count(*) FILTER (WHERE status <> 'success') AS failed, count(*) AS n
           FROM results WHERE task_id = ANY($1) AND checked_at > now() - $3::interval
           GROUP BY 1 ORDER BY 1""",
        task_ids,
        width,
        span,
    )
    return [dict(r) for r in rows]


def incidents_from(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Periods of non-ok severity from one task's changes (oldest first): start, end
    (None while open), the worst severity reached and the reason it started with."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    order = {s: i for i, s in enumerate(SEVERITIES)}
    for c in changes:
        if c["severity"] != "ok":
            if current is None:
                current = {
                    "task_id": c["task_id"],
                    "start": c["at"],
                    "end": None,
                    "severity": c["severity"],
                    "reason": c["reason"],
                }
                out.append(current)
            elif order[c["severity"]] < order[current["severity"]]:
                current["severity"] = c["severity"]
        elif current is not None:
            current["end"] = c["at"]
            current = None
    for i in out:
        i["duration"] = (i["end"] or datetime.now(i["start"].tzinfo)) - i["start"]
    return out


async def incidents(
    conn: asyncpg.Connection,
    task_ids: list[str] | None = None,
    limit: int = 50,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Newest incidents first, of the given tasks (every task when None)."""
    rows = await conn.fetch(
        """SELECT c.task_id, c.seq, c.at, c.previous, c.severity, c.reason, t.domain, t.url,
                  t.check_kind
           FROM severity_changes c LEFT JOIN tasks t ON t.id = c.task_id
           WHERE ($1::text[] IS NULL OR c.task_id = ANY($1))
             AND ($2::timestamptz IS NULL OR c.at >= $2)
           ORDER BY c.task_id, c.seq""",
        task_ids,
        since,
    )
    by_task: dict[str, list[dict[str, Any]]] = {}
    meta: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_task.setdefault(r["task_id"], []).append(dict(r))
        meta[r["task_id"]] = {"domain": r["domain"], "url": r["url"], "check": r["check_kind"]}
    out = []
    for tid, changes in by_task.items():
        for i in incidents_from(changes):
            out.append(i | meta[tid])
    out.sort(key=lambda i: i["start"], reverse=True)
    return out[:limit]


async def agents(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        # Silent since the log received its last heartbeat; its clock ahead by clock_offset.
        """SELECT a.name, a.location, a.version, a.concurrency, a.in_flight, a.completed,
                  a.started_at, a.last_seen, a.stopping, coalesce(h.requests, 0) AS last_hour,
                  coalesce(a.received_at, a.last_seen) AS received_at,
                  extract(epoch FROM now() - coalesce(a.received_at, a.last_seen)) AS silent_for,
                  extract(epoch FROM a.last_seen - a.received_at) AS clock_offset
           FROM agents a LEFT JOIN (
             SELECT agent, count(DISTINCT request) AS requests FROM results
             WHERE checked_at > now() - interval '1 hour' GROUP BY agent) h
           ON h.agent = a.name
           ORDER BY a.location, a.name"""
    )
    return [dict(r) for r in rows]


EVENT_TYPES = ("config.applied", "severity.changed", "deadletter")

_EVENTS = """
    SELECT seq, at, 'config.applied' AS type, NULL::text AS task_id, NULL::text AS grp,
           format('revision %s from %s by %s: +%s ~%s -%s (part %s/%s)', revision, source,
                  applied_by, added, changed, removed, part, parts) AS summary,
           diff AS data
    FROM config_history
    WHERE ($1 = '' OR $1 = 'config.applied') AND ($2 = '' OR diff::text LIKE '%' || $2 || '%')
      AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
    UNION ALL
    SELECT seq, at, 'severity.changed', task_id, NULL,
           format('%s → %s: %s', coalesce(previous, 'new'), severity, reason),
           jsonb_build_object('previous', previous, 'severity', severity)
    FROM severity_changes
    WHERE ($1 = '' OR $1 = 'severity.changed') AND ($2 = '' OR task_id = $2)
      AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
    UNION ALL
    SELECT seq, at, 'deadletter', NULL, grp,
           format('%s: %s (%s #%s, %s)', kind, reason, stream, source_seq, subject),
           jsonb_build_object('excerpt', excerpt, 'consumer', consumer)
    FROM dead_letters
    WHERE ($1 = '' OR $1 = 'deadletter')
      AND ($2 = '' OR grp = (SELECT grp FROM tasks WHERE id = $2))
      AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
"""


async def events(
    conn: asyncpg.Connection,
    type_: str = "",
    task_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The audit trail, newest first: configurations applied (with their diff), severity
    changes and dead letters, as the log recorded them."""
    rows = await conn.fetch(
        f"{_EVENTS} ORDER BY seq DESC, task_id LIMIT $5 OFFSET $6",
        type_,
        task_id,
        since,
        until,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def position(conn: asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT seq, undecodable, updated_at FROM position WHERE name = 'events'"
    )
    return dict(row) if row else {}


async def agent_checks(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Each agent's count of completed checks, as its last heartbeat said."""
    return await conn.fetch("SELECT name, location, completed FROM agents ORDER BY name")


async def response_quantiles(conn: asyncpg.Connection, window: int = 300) -> dict[str, float]:
    r = await conn.fetchrow(
        """SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY response_ms)
                  AS q, count(response_ms) AS n, coalesce(sum(response_ms), 0) AS total
           FROM results WHERE checked_at > now() - make_interval(secs => $1)""",
        window,
    )
    q = r["q"] or [None, None, None]
    return {"0.5": q[0], "0.9": q[1], "0.99": q[2], "count": r["n"], "sum": r["total"]}
