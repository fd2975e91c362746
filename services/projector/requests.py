"""The status columns of the ``requests`` read model: each check request's life, from the log.

The row is inserted from its ``check.requested`` (``writers.write_requests``: queued); this
module folds what happens to it next (pure ``fold``) and applies it with set-based UPDATEs
(``write``), in the caller's transaction. A change carries only what its events said (None
elsewhere), so changes of one request over several batches merge in SQL; a status only
moves forward (``RANK``), so a late event never brings a request back. An event about a
request the log never asked for, or one of another location, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from events.types import (
    AnyEvent,
    CheckCompleted,
    CheckStarted,
    ConfigApplied,
    DeadLettered,
    TaskJudged,
)

#: A status is replaced only by one of a higher rank. Judged and dead-lettered are ends;
#: cancelled (set in SQL, see ``_CANCEL``) only ever replaces an unfinished request.
RANK = {"queued": 1, "running": 2, "completed": 3, "judged": 4, "dead_lettered": 4, "cancelled": 5}

COLUMNS = (
    "id",
    "location",
    "status",
    "agent",
    "deliveries",
    "started_at",
    "completed_at",
    "completion_seq",
    "run_ms",
    "error",
    "updated_seq",
)


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass
class StatusChanges:
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (completion sequence, judged at): the requests those completions answer are judged.
    judged: list[tuple[int, datetime]] = field(default_factory=list)
    config_changed: bool = False

    def row(self, request: str, seq: int) -> dict[str, Any]:
        row = self.rows.setdefault(request, dict.fromkeys(COLUMNS))
        row.update(id=request, updated_seq=seq)
        return row

    @staticmethod
    def status(row: dict[str, Any], status: str) -> None:
        if row["status"] is None or RANK[status] > RANK[row["status"]]:
            row["status"] = status


def fold(c: StatusChanges, seq: int, ev: AnyEvent) -> None:
    """Fold one event the projector took (``check.requested`` is the row's insert)."""
    if isinstance(ev, CheckStarted):
        row = c.row(ev.request, seq)
        row.update(location=ev.location, agent=ev.agent, started_at=_ts(ev.at))
        row["deliveries"] = max(row["deliveries"] or 0, ev.delivery)
        c.status(row, "running")
    elif isinstance(ev, CheckCompleted):
        row = c.row(ev.request, seq)
        row.update(
            location=ev.location,
            agent=ev.agent,
            started_at=_ts(ev.started),
            completed_at=_ts(ev.at),
            completion_seq=seq,
            run_ms=round(max(ev.at - ev.started, 0.0) * 1000, 2),
            error=ev.observation.error,
        )
        c.status(row, "completed")
    elif isinstance(ev, TaskJudged) and ev.completion:
        c.judged.append((ev.completion, _ts(ev.at)))
    elif isinstance(ev, DeadLettered) and ev.kind == "max_deliver" and ev.request:
        row = c.row(ev.request, seq)
        row["error"] = ev.reason
        row["deliveries"] = max(row["deliveries"] or 0, ev.deliveries or 0)
        c.status(row, "dead_lettered")
    elif isinstance(ev, ConfigApplied) and ev.removed:
        c.config_changed = True


def _rank_sql(column: str) -> str:
    cases = " ".join(f"WHEN '{s}' THEN {n}" for s, n in RANK.items())
    return f"(CASE {column} {cases} ELSE 0 END)"


# Merge with what earlier batches wrote: a column the batch does not know stays as it is.
UPDATE = f"""
UPDATE requests r SET
  status = CASE WHEN {_rank_sql("u.status")} > {_rank_sql("r.status")}
                THEN u.status ELSE r.status END,
  agent = coalesce(u.agent, r.agent),
  deliveries = greatest(u.deliveries, r.deliveries),
  started_at = coalesce(u.started_at, r.started_at),
  completed_at = coalesce(u.completed_at, r.completed_at),
  completion_seq = coalesce(u.completion_seq, r.completion_seq),
  run_ms = coalesce(u.run_ms, r.run_ms),
  error = coalesce(u.error, r.error),
  updated_seq = greatest(u.updated_seq, r.updated_seq)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[],
            $7::timestamptz[], $8::bigint[], $9::float8[], $10::text[], $11::bigint[])
     AS u({", ".join(COLUMNS)})
WHERE r.id = u.id AND (u.location IS NULL OR r.location = u.location)
"""

_JUDGED = """
UPDATE requests r SET status = 'judged', judged_at = j.at
FROM unnest($1::bigint[], $2::timestamptz[]) AS j(completion, at)
WHERE r.completion_seq = j.completion AND r.status IN ('queued', 'running', 'completed')
"""

# A request whose group no longer has a task is never judged: the configuration superseded it.
_CANCEL = """
UPDATE requests r SET status = 'cancelled',
  error = coalesce(r.error, 'superseded by a configuration change')
WHERE r.status IN ('queued', 'running', 'completed')
  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.grp = r.grp AND t.removed_at IS NULL)
"""


async def write(conn: asyncpg.Connection, c: StatusChanges) -> None:
    """Apply ``c``, after the batch's requests and task definitions are written."""
    if c.rows:
        rows = list(c.rows.values())
        for row in rows:
            row["deliveries"] = row["deliveries"] or 0
        await conn.execute(UPDATE, *[[row[col] for row in rows] for col in COLUMNS])
    if c.judged:
        await conn.execute(_JUDGED, [j[0] for j in c.judged], [j[1] for j in c.judged])
    if c.config_changed:
        await conn.execute(_CANCEL)
