"""Writing folded changes: one writer per read model, all inside the caller's transaction.

Each writer takes the whole ``Changes`` of a batch and touches its own tables with a
constant number of statements (COPY, set-based UPDATE, executemany), whatever the
batch size. ``write`` runs them in an order that respects the tables' references.
"""

from __future__ import annotations

import asyncpg
import msgspec

from services.projector import hostfold, rowsets
from services.projector import requests as request_model
from services.projector.fold import Changes, ts

# One UPDATE per batch for both the last result and the verdict of each task: the tasks
# table is the projector's hot spot, so it is touched once per row and batch. A part that
# the batch does not carry (seq or severity NULL) leaves its columns as they are.
_TASK_COLUMNS = (
    ("id", "text"),
    ("seq", "bigint"),
    ("status", "text"),
    ("detail", "text"),
    ("checked", "timestamptz"),
    ("http", "int"),
    ("ms", "float8"),
    ("agent", "text"),
    ("severity", "text"),
    ("reason", "text"),
    ("failures", "int"),
    ("next_run", "timestamptz"),
    ("changed_at", "timestamptz"),
    ("judged", "timestamptz"),
)
_TASK_UPDATE = f"""
UPDATE tasks t SET
  last_result_seq = CASE WHEN u.seq IS NULL THEN t.last_result_seq ELSE u.seq END,
  last_status = CASE WHEN u.seq IS NULL THEN t.last_status ELSE u.status END,
  last_detail = CASE WHEN u.seq IS NULL THEN t.last_detail ELSE u.detail END,
  last_checked_at = CASE WHEN u.seq IS NULL THEN t.last_checked_at ELSE u.checked END,
  http_status = CASE WHEN u.seq IS NULL THEN t.http_status ELSE u.http END,
  response_ms = CASE WHEN u.seq IS NULL THEN t.response_ms ELSE u.ms END,
  last_agent = CASE WHEN u.seq IS NULL THEN t.last_agent ELSE u.agent END,
  severity = coalesce(u.severity, t.severity),
  reason = CASE WHEN u.severity IS NULL THEN t.reason ELSE u.reason END,
  failures = coalesce(u.failures, t.failures),
  next_run = CASE WHEN u.severity IS NULL THEN t.next_run ELSE u.next_run END,
  severity_since = CASE WHEN u.severity IS NULL THEN t.severity_since
                        WHEN u.changed_at IS NOT NULL THEN u.changed_at
                        WHEN t.severity IS DISTINCT FROM u.severity THEN u.judged
                        ELSE t.severity_since END
FROM {rowsets.source(_TASK_COLUMNS)} AS u
WHERE t.id = u.id
"""


def _task_update_rows(c: Changes) -> str:
    """A row per task of a last result (its own row: the task first), a verdict, or both."""
    results, verdicts = c.last_results, c.judgements
    no_verdict = (None,) * 6
    rows = [
        (*result, *verdicts[task][1:]) if task in verdicts else (*result, *no_verdict)
        for task, result in results.items()
    ]
    no_result = (None,) * 7
    rows += [(task, *no_result, *v[1:]) for task, v in verdicts.items() if task not in results]
    return rowsets.rowset(rows)


RESULT_COLUMNS = [
    "seq",
    "task_id",
    "grp",
    "agent",
    "location",
    "request",
    "checked_at",
    "status",
    "detail",
    "value",
    "http_status",
    "response_ms",
    "error",
    "observation",
]
_DEAD_COLUMNS = [
    "seq",
    "at",
    "kind",
    "stream",
    "source_seq",
    "subject",
    "consumer",
    "reason",
    "excerpt",
    "grp",
]


async def write_task_definitions(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Tasks added, changed (upserted) and removed by configurations."""
    upserts = [t for t, _ in c.task_defs.values() if t is not None]
    if upserts:
        await conn.executemany(
            """INSERT INTO tasks (id, grp, domain, url, method, ip_version, check_kind, expected,
                                  frequency, definition)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10::jsonb)
               ON CONFLICT (id) DO UPDATE SET grp = EXCLUDED.grp, domain = EXCLUDED.domain,
                 url = EXCLUDED.url, method = EXCLUDED.method, ip_version = EXCLUDED.ip_version,
                 check_kind = EXCLUDED.check_kind, expected = EXCLUDED.expected,
                 frequency = EXCLUDED.frequency, definition = EXCLUDED.definition,
                 removed_at = NULL""",
            [
                (
                    t.id,
                    t.group,
                    t.domain,
                    t.url,
                    t.method,
                    t.ip_version,
                    t.check,
                    msgspec.json.encode(t.expected).decode(),
                    t.frequency,
                    msgspec.json.encode(t).decode(),
                )
                for t in upserts
            ],
        )
    removed = [(tid, ts(at)) for tid, (_, at) in c.task_defs.items() if at is not None]
    if removed:
        await conn.executemany("UPDATE tasks SET removed_at = $2 WHERE id = $1", removed)


async def write_requests(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Requests of the log (which completions must answer) and what happened to them since:
    running, completed, judged, dead-lettered, cancelled."""
    await request_model.write(conn, c.requests, c.request_status)


async def write_results(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Every result of every completion (append-only)."""
    if c.results:
        await conn.copy_records_to_table(
            "results", records=c.results, columns=RESULT_COLUMNS, schema_name=schema
        )


async def write_task_state(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Each task's last result and verdict, and its severity changes."""
    if c.last_results or c.judgements:
        await conn.execute(_TASK_UPDATE, _task_update_rows(c))
    if c.severity_changes:
        await conn.copy_records_to_table(
            "severity_changes",
            records=c.severity_changes,
            schema_name=schema,
            columns=["seq", "task_id", "at", "previous", "severity", "reason"],
        )


#: The severity change a removal makes of a task not ok: its incident ends (the task is no
#: longer judged, so nothing else would end it). Its severity before is its last change's.
_RETIRE = """
INSERT INTO severity_changes (seq, task_id, at, previous, severity, reason)
SELECT r.seq, r.task, r.at, last.severity, 'ok', $4
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS r (seq, task, at)
CROSS JOIN LATERAL (SELECT c.severity FROM severity_changes c
                    WHERE c.task_id = r.task AND c.seq < r.seq
                    ORDER BY c.seq DESC LIMIT 1) AS last
WHERE last.severity <> 'ok'
ON CONFLICT DO NOTHING"""

RETIRED = "no longer monitored: removed from the configuration"


async def write_retired(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Tasks removed while not ok: their incidents end at the removal (after the batch's own
    severity changes are written, so that one judged in the batch before it counts)."""
    if c.retired:
        seqs, tasks, ats = zip(*c.retired, strict=True)
        await conn.execute(_RETIRE, list(seqs), list(tasks), list(ats), RETIRED)


async def write_agents(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """The latest heartbeat of each agent: the latest taken (``liveness``)."""
    if c.agents:
        await conn.executemany(
            """INSERT INTO agents (name, location, version, concurrency, in_flight, completed,
                                   started_at, last_seen, stopping, received_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (name) DO UPDATE SET location = EXCLUDED.location,
                 version = EXCLUDED.version, concurrency = EXCLUDED.concurrency,
                 in_flight = EXCLUDED.in_flight, completed = EXCLUDED.completed,
                 started_at = EXCLUDED.started_at, last_seen = EXCLUDED.last_seen,
                 stopping = EXCLUDED.stopping, received_at = EXCLUDED.received_at
               WHERE least(agents.last_seen, agents.received_at)
                 <= least(EXCLUDED.last_seen, EXCLUDED.received_at)""",
            list(c.agents.values()),
        )


async def write_dead_letters(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Dead letters: recorded by services, and refused by this projector."""
    if c.dead_letters:
        await conn.copy_records_to_table(
            "dead_letters", records=c.dead_letters, columns=_DEAD_COLUMNS, schema_name=schema
        )


async def write_notifications(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Notifications sent or failed (append-only)."""
    if c.notifications:
        await conn.executemany(
            """INSERT INTO notifications (seq, at, outcome, key, kind, channel, recipient,
                                          severity, previous, task_id, domain, source_seq,
                                          attempt, error, final)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
            c.notifications,
        )


async def write_silences(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Silences added and removed."""
    if c.silences_added:
        await conn.executemany(
            """INSERT INTO silences (id, seq, created_at, starts_at, ends_at, domain, task_id,
                                     reason, created_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING""",
            c.silences_added,
        )
    if c.silences_removed:
        await conn.executemany(
            "UPDATE silences SET removed_at = $2, removed_by = $3 WHERE id = $1", c.silences_removed
        )
    if c.status_posts:
        await conn.executemany(
            """INSERT INTO status_posts (seq, incident, page, at, phase, message, by, title,
                                         components)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) ON CONFLICT (seq) DO NOTHING""",
            c.status_posts,
        )
    if c.status_subscribers:
        # A confirmation keeps the token it confirmed; a new request brings a new one.
        await conn.executemany(
            """INSERT INTO status_subscribers (page, email, seq, at, state, token)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (page, email) DO UPDATE SET seq = EXCLUDED.seq, at = EXCLUDED.at,
                 state = EXCLUDED.state,
                 token = CASE WHEN EXCLUDED.token = '' THEN status_subscribers.token
                              ELSE EXCLUDED.token END
               WHERE status_subscribers.seq < EXCLUDED.seq""",
            list(c.status_subscribers.values()),
        )


async def write_config_history(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """The configuration history (the audit trail)."""
    if c.configs:
        await conn.executemany(
            """INSERT INTO config_history (seq, at, revision, source, applied_by, part, parts,
                                           added, changed, removed, diff)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)""",
            c.configs,
        )


async def write_position(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """How far in the log the read models are."""
    await conn.execute(
        "UPDATE position SET seq = $1, undecodable = undecodable + $2, updated_at = now() "
        "WHERE name = 'events'",
        c.last_seq,
        c.undecodable,
    )


async def write_hosts(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    await hostfold.write(conn, c.hosts, c.host_samples, schema)


WRITERS = (
    write_task_definitions,
    write_requests,
    write_results,
    write_task_state,
    write_retired,
    write_agents,
    write_dead_letters,
    write_notifications,
    write_silences,
    write_config_history,
    write_hosts,
    write_position,
)


async def write(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Apply ``c`` inside the caller's transaction."""
    for writer in WRITERS:
        await writer(conn, c, schema)
