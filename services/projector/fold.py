"""Folding a batch of events into read-model changes: pure, then written in one go.

``fold`` turns an ordered batch into row sets (what to insert, what to update
and with which latest values); ``write`` applies them with COPY and set-based
UPDATEs inside the caller's transaction. Keeping the decision pure lets the
tests check folding with tables and keeps the database round trips per batch
constant, whatever the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from events.types import (
    AgentHeartbeat,
    AnyEvent,
    CheckCompleted,
    CheckRequested,
    ConfigApplied,
    DeadLettered,
    NotificationFailed,
    NotificationSent,
    SilenceAdded,
    SilenceRemoved,
    TaskDef,
    TaskJudged,
)


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass
class Undecodable:
    """A message of the log that is not a valid event (recorded, then skipped)."""

    subject: str
    reason: str
    excerpt: str
    at: float


@dataclass
class Changes:
    last_seq: int = 0
    undecodable: int = 0
    task_defs: dict[str, tuple[TaskDef | None, float]] = field(default_factory=dict)
    results: list[tuple[Any, ...]] = field(default_factory=list)
    last_results: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    judgements: dict[str, list[Any]] = field(default_factory=dict)
    severity_changes: list[tuple[Any, ...]] = field(default_factory=list)
    agents: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    dead_letters: list[tuple[Any, ...]] = field(default_factory=list)
    configs: list[tuple[Any, ...]] = field(default_factory=list)
    notifications: list[tuple[Any, ...]] = field(default_factory=list)
    silences_added: list[tuple[Any, ...]] = field(default_factory=list)
    silences_removed: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def touched_tasks(self) -> int:
        return len(self.task_defs.keys() | self.last_results.keys() | self.judgements.keys())


def fold(batch: list[tuple[int, AnyEvent | Undecodable]]) -> Changes:
    c = Changes()
    for seq, ev in batch:
        c.last_seq = max(c.last_seq, seq)
        if isinstance(ev, Undecodable):
            c.undecodable += 1
            c.dead_letters.append(
                (
                    seq,
                    ts(ev.at),
                    "undecodable",
                    "EVENTS",
                    seq,
                    ev.subject,
                    "projector",
                    ev.reason,
                    ev.excerpt,
                    None,
                )
            )
        elif isinstance(ev, CheckCompleted):
            _completed(c, seq, ev)
        elif isinstance(ev, TaskJudged):
            _judged(c, seq, ev)
        elif isinstance(ev, ConfigApplied):
            _config(c, seq, ev)
        elif isinstance(ev, AgentHeartbeat):
            c.agents[ev.agent] = (
                ev.agent,
                ev.location,
                ev.version,
                ev.concurrency,
                ev.in_flight,
                ev.completed,
                ts(ev.started),
                ts(ev.at),
                ev.stopping,
            )
        elif isinstance(ev, DeadLettered):
            c.dead_letters.append(
                (
                    seq,
                    ts(ev.at),
                    ev.kind,
                    ev.stream,
                    ev.seq,
                    ev.subject,
                    ev.consumer,
                    ev.reason,
                    ev.excerpt,
                    ev.group,
                )
            )
        elif isinstance(ev, NotificationSent | NotificationFailed):
            _notification(c, seq, ev)
        elif isinstance(ev, SilenceAdded):
            c.silences_added.append(
                (
                    ev.id,
                    seq,
                    ts(ev.at),
                    ts(ev.starts),
                    ts(ev.ends),
                    ev.domain,
                    ev.task,
                    ev.reason,
                    ev.by,
                )
            )
        elif isinstance(ev, SilenceRemoved):
            c.silences_removed.append((ev.id, ts(ev.at), ev.by))
        elif isinstance(ev, CheckRequested):
            pass  # requests live in WORK; the read models track their results
    return c


def _completed(c: Changes, seq: int, ev: CheckCompleted) -> None:
    obs = ev.observation
    obs_json = msgspec.json.encode(obs).decode()
    at = ts(ev.at)
    seen: set[str] = set()
    for o in ev.outcomes:
        if o.task in seen:
            continue  # one result per task and completion
        seen.add(o.task)
        c.results.append(
            (
                seq,
                o.task,
                ev.group,
                ev.agent,
                ev.location,
                ev.request,
                at,
                o.status,
                o.detail,
                o.value,
                obs.status,
                obs.elapsed_ms,
                obs.error,
                obs_json,
            )
        )
        c.last_results[o.task] = (
            o.task,
            seq,
            o.status,
            o.detail,
            at,
            obs.status,
            obs.elapsed_ms,
            ev.agent,
        )


def _judged(c: Changes, seq: int, ev: TaskJudged) -> None:
    at = ts(ev.at)
    seen: set[str] = set()
    for j in ev.judgements:
        if j.task in seen:
            continue
        seen.add(j.task)
        prev = c.judgements.get(j.task)
        changed_at = prev[5] if prev else None
        if j.severity != j.previous:
            changed_at = at
            c.severity_changes.append((seq, j.task, at, j.previous, j.severity, j.reason))
        c.judgements[j.task] = [
            j.task,
            j.severity,
            j.reason,
            j.failures,
            ts(ev.next_run),
            changed_at,
            at,
        ]


def _config(c: Changes, seq: int, ev: ConfigApplied) -> None:
    for t in ev.added:
        c.task_defs[t.id] = (t, ev.at)
    for ch in ev.changed:
        c.task_defs[ch.task.id] = (ch.task, ev.at)
    for tid in ev.removed:
        c.task_defs[tid] = (None, ev.at)
    diff = msgspec.json.encode(
        {"added": ev.added, "changed": ev.changed, "removed": ev.removed}
    ).decode()
    c.configs.append(
        (
            seq,
            ts(ev.at),
            ev.revision,
            ev.source,
            ev.applied_by,
            ev.part,
            ev.parts,
            len(ev.added),
            len(ev.changed),
            len(ev.removed),
            diff,
        )
    )


def _notification(c: Changes, seq: int, ev: NotificationSent | NotificationFailed) -> None:
    if isinstance(ev, NotificationSent):
        outcome, previous, error, final = "sent", ev.previous, None, False
    else:
        outcome, previous, error, final = "failed", None, ev.error, ev.final
    c.notifications.append(
        (
            seq,
            ts(ev.at),
            outcome,
            ev.key,
            ev.kind,
            ev.channel,
            ev.recipient,
            ev.severity,
            previous,
            ev.task,
            ev.domain,
            ev.source_seq,
            ev.attempt,
            error,
            final,
        )
    )


# One UPDATE per batch for both the last result and the verdict of each task: the tasks
# table is the projector's hot spot, so it is touched once per row and batch. A part that
# the batch does not carry (seq or severity NULL) leaves its columns as they are.
_TASK_UPDATE = """
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
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::int[],
            $7::float8[], $8::text[], $9::text[], $10::text[], $11::int[], $12::timestamptz[],
            $13::timestamptz[], $14::timestamptz[])
     AS u(id, seq, status, detail, checked, http, ms, agent, severity, reason, failures,
          next_run, changed_at, judged)
WHERE t.id = u.id
"""


def _task_update_columns(c: Changes) -> list[list[Any]]:
    ids = list(c.last_results.keys() | c.judgements.keys())
    none_result = (None,) * 8
    none_verdict = [None] * 7
    rows = [
        (*c.last_results.get(i, none_result)[1:], *c.judgements.get(i, none_verdict)[1:])
        for i in ids
    ]
    return [ids, *[list(col) for col in zip(*rows, strict=True)]]


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


async def write(conn: asyncpg.Connection, c: Changes, schema: str) -> None:
    """Apply ``c`` inside the caller's transaction."""
    upserts = [(t, at) for t, at in c.task_defs.values() if t is not None]
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
                for t, _ in upserts
            ],
        )
    removed = [(tid, ts(at)) for tid, (t, at) in c.task_defs.items() if t is None]
    if removed:
        await conn.executemany("UPDATE tasks SET removed_at = $2 WHERE id = $1", removed)
    if c.results:
        await conn.copy_records_to_table(
            "results", records=c.results, columns=RESULT_COLUMNS, schema_name=schema
        )
    if c.last_results or c.judgements:
        await conn.execute(_TASK_UPDATE, *_task_update_columns(c))
    if c.severity_changes:
        await conn.copy_records_to_table(
            "severity_changes",
            records=c.severity_changes,
            schema_name=schema,
            columns=["seq", "task_id", "at", "previous", "severity", "reason"],
        )
    if c.agents:
        await conn.executemany(
            """INSERT INTO agents (name, location, version, concurrency, in_flight, completed,
                                   started_at, last_seen, stopping)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (name) DO UPDATE SET location = EXCLUDED.location,
                 version = EXCLUDED.version, concurrency = EXCLUDED.concurrency,
                 in_flight = EXCLUDED.in_flight, completed = EXCLUDED.completed,
                 started_at = EXCLUDED.started_at, last_seen = EXCLUDED.last_seen,
                 stopping = EXCLUDED.stopping
               WHERE agents.last_seen <= EXCLUDED.last_seen""",
            list(c.agents.values()),
        )
    if c.dead_letters:
        await conn.copy_records_to_table(
            "dead_letters", records=c.dead_letters, columns=_DEAD_COLUMNS, schema_name=schema
        )
    if c.notifications:
        await conn.executemany(
            """INSERT INTO notifications (seq, at, outcome, key, kind, channel, recipient,
                                          severity, previous, task_id, domain, source_seq,
                                          attempt, error, final)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
            c.notifications,
        )
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
    if c.configs:
        await conn.executemany(
            """INSERT INTO config_history (seq, at, revision, source, applied_by, part, parts,
                                           added, changed, removed, diff)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)""",
            c.configs,
        )
    await conn.execute(
        "UPDATE position SET seq = $1, undecodable = undecodable + $2, updated_at = now() "
        "WHERE name = 'events'",
        c.last_seq,
        c.undecodable,
    )
