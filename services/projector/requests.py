"""The status columns of the ``requests`` read model: each check request's life, from the log.

The row is inserted from its ``check.requested`` (queued); this module folds what happens to
it next (pure ``fold``) and applies it (``write``), in the caller's transaction. A change
carries only what its events said (None elsewhere), so changes of one request over several
batches merge in SQL; a status only moves forward (``RANK``), so a late event never brings a
request back. An event about a request the log never asked for, or one of another location,
changes nothing.

A request asked, run, completed and judged within one batch (every request of a rebuild,
most of a backlog) is inserted once in its final state (``merged``) instead of inserted then
updated twice: each update of ``requests`` rewrites the row and all its indexes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, NamedTuple

import asyncpg

from events.types import (
    AnyEvent,
    CheckCompleted,
    CheckRequested,
    CheckStarted,
    ConfigApplied,
    DeadLettered,
)
from services.projector import rowsets

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
    "judged_at",
)


_TASK = attrgetter("task")


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class Request(NamedTuple):
    """What a completion must answer: a request of its location and group, for its tasks.
    (A tuple: one is made for every request of a batch, and a frozen dataclass was slower.)"""

    location: str
    group: str
    tasks: frozenset[str]
    #: (stream sequence, agent) of the completion it took, the first in the log: a request
    #: is completed once, whatever the duplicate window let through after it.
    completed: tuple[int, str] | None = None


def asked(ev: CheckCompleted | CheckStarted, requests: Mapping[str, Request]) -> str | None:
    """Why ``ev`` is not about a request of the log at its location, or None when it is."""
    req = requests.get(ev.request)
    if req is None or req.location != ev.location:
        return f"request {ev.request[:80]!r} of location {ev.location!r} is not in the log"
    if req.group != ev.group:
        return f"request {ev.request[:80]!r} is of group {req.group!r}, not {ev.group!r}"
    return None


def answered(ev: CheckCompleted, requests: Mapping[str, Request]) -> str | None:
    """Why ``ev`` does not answer a request of the log, or None when it does."""
    problem = asked(ev, requests)
    if problem:
        return problem
    asked_for = requests[ev.request].tasks
    if asked_for.issuperset(map(_TASK, ev.outcomes)):
        return None
    stray = sorted({o.task for o in ev.outcomes} - asked_for)
    return f"outcomes for tasks {stray[:5]} that request {ev.request[:80]!r} did not ask for"


def completed_before(ev: CheckCompleted, requests: Mapping[str, Request]) -> str | None:
    """Why ``ev``, answering a request of the log, is not its completion: an earlier one is
    (the same agent publishing again past the duplicate window, or another agent of the
    location). None when it is the first."""
    done = requests[ev.request].completed
    if done is None:
        return None
    seq, agent = done
    return f"request {ev.request[:80]!r} already completed by agent {agent!r} at seq {seq}"


#: Places in a status row (``COLUMNS``' order).
(
    _,
    LOCATION,
    STATUS,
    AGENT,
    DELIVERIES,
    STARTED,
    COMPLETED,
    COMPLETION,
    RUN_MS,
    ERROR,
    UPDATED,
    JUDGED,
) = range(len(COLUMNS))


@dataclass
class StatusChanges:
    #: A list per request in ``COLUMNS``' order, None where its events said nothing (a list:
    #: one is made per request of a batch, and a dict of the columns cost a third more).
    rows: dict[str, list[Any]] = field(default_factory=dict)
    #: (completion sequence, judged at): the requests those completions answer are judged.
    judged: list[tuple[int, datetime]] = field(default_factory=list)
    config_changed: bool = False

    def row(self, request: str, seq: int) -> list[Any]:
        row = self.rows.get(request)
        if row is None:
            row = self.rows[request] = [request, *_UNSAID]
        row[UPDATED] = seq
        return row

    @staticmethod
    def status(row: list[Any], status: str) -> None:
        if row[STATUS] is None or RANK[status] > RANK[row[STATUS]]:
            row[STATUS] = status


_UNSAID = (None,) * (len(COLUMNS) - 1)


def started(c: StatusChanges, seq: int, ev: CheckStarted, req: Request) -> None:
    """A start of ``req``, a request of the log at the start's location."""
    if req.completed:
        # After its completion, a start (a redelivery whose completion the duplicate
        # window drops, or a forgery) changes nothing: the row tells the run it took.
        return
    row = c.row(ev.request, seq)
    row[LOCATION], row[AGENT], row[STARTED] = ev.location, ev.agent, _ts(ev.at)
    row[DELIVERIES] = max(row[DELIVERIES] or 0, ev.delivery)
    c.status(row, "running")


def completed(c: StatusChanges, seq: int, ev: CheckCompleted, at: datetime) -> None:
    """The completion of a request of the log at its location (``at``: ``ev.at``)."""
    row = c.row(ev.request, seq)
    row[LOCATION], row[AGENT], row[STARTED] = ev.location, ev.agent, _ts(ev.started)
    row[COMPLETED], row[COMPLETION] = at, seq
    row[RUN_MS] = round(max(ev.at - ev.started, 0.0) * 1000, 2)
    # Delivered once at least: a quick first run says so in its completion alone.
    row[DELIVERIES] = max(row[DELIVERIES] or 0, 1)
    if ev.observation.error is not None:  # as in SQL: an earlier error stays
        row[ERROR] = ev.observation.error
    c.status(row, "completed")


def fold(c: StatusChanges, seq: int, ev: AnyEvent, asked: Mapping[str, Any]) -> None:
    """Fold one event the projector took other than a request's own (``started``,
    ``completed``; ``check.requested`` is the row's insert, ``task.judged`` goes to
    ``judged``).

    ``asked``: the requests of the log up to ``ev`` by id: a dead letter about one of them
    only, as the UPDATE of a batch of one would find it. Merged into a row of a request
    that is not, it would be written with the row's other changes."""
    if isinstance(ev, DeadLettered) and ev.kind == "max_deliver" and ev.request:
        if ev.request not in asked:
            return
        row = c.row(ev.request, seq)
        row[ERROR] = ev.reason
        row[DELIVERIES] = max(row[DELIVERIES] or 0, ev.deliveries or 0)
        c.status(row, "dead_lettered")
    elif isinstance(ev, ConfigApplied) and ev.removed:
        c.config_changed = True


#: Whether events of a type name a request, by type (``referenced``).
_NAMING: dict[type, bool] = {}


def referenced(batch: Iterable[object]) -> set[str]:
    """The requests that events of ``batch`` name: the ones to look up in the table. One the
    batch asks is looked up too: an earlier batch may have asked that id, and the first
    request of an id is the one (however the log is batched); knowing it, the fold leaves it
    out of the batch's inserts. (Told by type, once per type: an ``isinstance`` of the union
    for every event, mirrors and all, cost more than the rest.)"""
    ids = set()
    for ev in batch:
        naming = _NAMING.get(type(ev))
        if naming is None:
            about = CheckRequested | CheckStarted | CheckCompleted | DeadLettered
            naming = _NAMING[type(ev)] = issubclass(type(ev), about)
        if naming and ev.request:  # type: ignore[attr-defined]
            ids.add(ev.request)  # type: ignore[attr-defined]
    return ids


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
  updated_seq = greatest(u.updated_seq, r.updated_seq),
  judged_at = CASE WHEN u.status = 'judged' AND {_rank_sql("r.status")} < {RANK["judged"]}
                   THEN u.judged_at ELSE r.judged_at END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[],
            $7::timestamptz[], $8::bigint[], $9::float8[], $10::text[], $11::bigint[],
            $12::timestamptz[])
     AS u({", ".join(COLUMNS)})
WHERE r.id = u.id AND (u.location IS NULL OR r.location = u.location)
"""

#: The columns a request is inserted with, from ``Changes.requests`` then its status row.
INSERT_COLUMNS = (
    ("id", "text"),
    ("location", "text"),
    ("grp", "text"),
    ("tasks", "text[]"),
    ("seq", "bigint"),
    ("requested_at", "timestamptz"),
    ("due", "timestamptz"),
    ("requested_by", "text"),
    ("status", "text"),
    ("agent", "text"),
    ("deliveries", "int"),
    ("started_at", "timestamptz"),
    ("completed_at", "timestamptz"),
    ("completion_seq", "bigint"),
    ("run_ms", "float8"),
    ("error", "text"),
    ("updated_seq", "bigint"),
    ("judged_at", "timestamptz"),
)
_INSERT_NAMES = [name for name, _ in INSERT_COLUMNS]
# No ON CONFLICT: the batch's requests are the ones the table lacks (``referenced``), and
# a speculative insertion was a fifth of the statement's CPU in PostgreSQL.
_INSERT = f"""
INSERT INTO requests ({", ".join(_INSERT_NAMES)})
SELECT * FROM {rowsets.source(INSERT_COLUMNS)} AS u
"""


# ``= ANY($1)`` lets the plan find the few rows by the open requests' completion index: joined
# to the array alone, it scanned the open requests' index, dead entries included, and grew
# with the table.
_JUDGED = """
UPDATE requests r SET status = 'judged', judged_at = j.at
FROM unnest($1::bigint[], $2::timestamptz[]) AS j(completion, at)
WHERE r.completion_seq = j.completion AND r.completion_seq = ANY($1::bigint[])
  AND r.status IN ('queued', 'running', 'completed')
"""

# A request whose group no longer has a task is never judged: the configuration superseded it.
_CANCEL = """
UPDATE requests r SET status = 'cancelled',
  error = coalesce(r.error, 'superseded by a configuration change')
WHERE r.status IN ('queued', 'running', 'completed')
  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.grp = r.grp AND t.removed_at IS NULL)
"""

_OPEN = ("queued", "running", "completed")


def merged(
    asked: dict[str, tuple[Any, ...]], c: StatusChanges
) -> tuple[list[list[Any]], dict[str, int]]:
    """The rows of the requests ``asked`` in this batch as the UPDATE and the judging that
    follow their insert would leave them (when the row is new), and which entry of
    ``c.judged`` judged each one."""
    rows: list[list[Any]] = []
    open_by_completion: dict[int, list[Any]] = {}
    for rid, (_, location, grp, tasks, seq, *when) in asked.items():
        row = [rid, location, grp, rowsets.tokens(tasks), seq, *when, "queued"]
        row += [None, 0, None, None, None, None, None, seq, None]
        change = c.rows.get(rid)
        if change is not None and change[LOCATION] in (None, location):
            if change[STATUS] is not None and RANK[change[STATUS]] > RANK["queued"]:
                row[8] = change[STATUS]
            row[9:17] = change[AGENT : UPDATED + 1]
            row[10] = change[DELIVERIES] or 0
            row[16] = max(change[UPDATED], seq)
            if row[13] is not None and row[8] in _OPEN:
                open_by_completion[row[13]] = row
        rows.append(row)
    judged: dict[str, int] = {}
    for i, (completion, at) in enumerate(c.judged):
        if completion in open_by_completion:  # the first judgement of its completion counts
            row = open_by_completion.pop(completion)
            row[8], row[17] = "judged", at
            judged[row[0]] = i
    return rows, judged


def judged_in_update(updates: list[list[Any]], judged: list[tuple[int, datetime]]) -> set[int]:
    """Which entries of ``judged`` judge a completion of ``updates`` (requests of earlier
    batches, completed in this one), each made part of its request's UPDATE: the row is then
    rewritten (with all its indexes) once, not completed then judged. As ``_JUDGED`` would,
    the first judgement of a completion counts, and only if the request is still open (the
    UPDATE's status rank)."""
    open_by_completion = {
        row[COMPLETION]: row
        for row in updates
        if row[COMPLETION] is not None and row[STATUS] in _OPEN
    }
    taken: set[int] = set()
    for i, (completion, at) in enumerate(judged):
        row = open_by_completion.pop(completion, None)
        if row is not None:
            row[STATUS], row[JUDGED] = "judged", at
            taken.add(i)
    return taken


async def write(
    conn: asyncpg.Connection, asked: dict[str, tuple[Any, ...]], c: StatusChanges
) -> None:
    """Insert the batch's requests (``asked``: ``Changes.requests``, none of them in the table
    yet) and apply ``c``, after the batch's task definitions are written."""
    rows, judged_new = merged(asked, c)
    if rows:
        await conn.execute(_INSERT, rowsets.rowset(rows))
    # A request already in the table (asked again) takes its changes like any older one.
    skip = set(judged_new.values())
    updates = [row for rid, row in c.rows.items() if rid not in asked]
    skip.update(judged_in_update(updates, c.judged))
    if updates:
        for row in updates:
            row[DELIVERIES] = row[DELIVERIES] or 0
        await conn.execute(UPDATE, *map(list, zip(*updates, strict=True)))
    judged = [j for i, j in enumerate(c.judged) if i not in skip]
    if judged:
        await conn.execute(_JUDGED, [j[0] for j in judged], [j[1] for j in judged])
    if c.config_changed:
        await conn.execute(_CANCEL)
