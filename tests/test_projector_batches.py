"""The read models do not depend on where the log is cut into batches: the live projector
(small batches), a backlog (batches of thousands) and a rebuild fold the same log into the
same rows, for every table, including the requests' life in all its turns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from checks import request
from events.types import (
    AnyEvent,
    CheckCompleted,
    CheckOutcome,
    CheckStarted,
    ConfigApplied,
    DeadLettered,
    Judgement,
    Observation,
    TaskDef,
    TaskJudged,
)
from readmodel import ensure_schema
from services.projector.fold import fold
from services.projector.rebuild import checksum
from services.projector.requests import _JUDGED, Request, referenced
from services.projector.service import Batch, apply_batch
from tests.web_fixtures import task_def

T0 = 1_760_000_000.25


class Log:
    def __init__(self) -> None:
        self.events: Batch = []
        self.severity: dict[str, Any] = {}

    def add(self, ev: AnyEvent) -> int:
        self.events.append((len(self.events) + 1, ev))
        return len(self.events)

    def ask(self, t: TaskDef, rid: str, at: float, location: str = "default") -> None:
        self.add(request.build([t], location, rid, at, at))

    def start(self, t: TaskDef, rid: str, at: float, location: str = "default", n: int = 1) -> None:
        self.add(
            CheckStarted(
                at=at, request=rid, group=t.group, agent="a1", location=location, delivery=n
            )
        )

    def complete(self, t: TaskDef, rid: str, at: float, error: str | None = None) -> int:
        return self.add(
            CheckCompleted(
                at=at,
                request=rid,
                group=t.group,
                agent="a1",
                location="default",
                started=at - 0.125,
                observation=Observation(status=200, elapsed_ms=12.5, error=error),
                outcomes=[CheckOutcome(t.id, t.check, "failure" if error else "success")],
            )
        )

    def judge(self, t: TaskDef, completion: int, at: float, severity: Any = "ok") -> None:
        previous = self.severity.get(t.id, "unknown")
        self.severity[t.id] = severity
        self.add(
            TaskJudged(
                at=at,
                group=t.group,
                completion=completion,
                next_run=at + 60,
                judgements=[Judgement(t.id, severity, previous, "because")],
            )
        )

    def dead(self, t: TaskDef, rid: str, at: float) -> None:
        self.add(
            DeadLettered(
                at=at,
                kind="max_deliver",
                stream="REQUESTS",
                seq=7,
                subject=f"tocsin.check.requested.default.{t.group}",
                consumer="agents",
                reason="out of deliveries",
                group=t.group,
                request=rid,
                deliveries=5,
            )
        )


def a_log() -> Batch:
    """Every turn a request's life can take, interleaved over a few tasks."""
    log = Log()
    tasks = [task_def(i) for i in range(4)]
    log.add(ConfigApplied(at=T0, revision="r1", source="c.yaml", applied_by="t", added=tasks))
    a, b, c, d = tasks
    t = T0 + 1
    # The whole life, twice over for one task.
    for n in range(2):
        log.ask(a, f"a.{n}", t)
        log.start(a, f"a.{n}", t + 0.5)
        done = log.complete(a, f"a.{n}", t + 1)
        log.judge(a, done, t + 2, "critical" if n else "ok")
        t += 10
    # Redelivered: started twice, completed twice (past the duplicate window); each
    # completion judged, one of them twice. The first completion is the request's: the
    # later start changes nothing, the later completion is a dead letter.
    log.ask(b, "b.0", t)
    log.start(b, "b.0", t + 0.5)
    first = log.complete(b, "b.0", t + 1, error="timeout")
    log.start(b, "b.0", t + 2, n=2)
    second = log.complete(b, "b.0", t + 3)
    log.judge(b, first, t + 4, "critical")
    log.judge(b, second, t + 5)
    log.judge(b, second, t + 6, "warning")
    # Asked again under the same id, a start from another location, out of deliveries.
    log.ask(c, "c.0", t)
    log.start(c, "c.0", t + 1, location="eu")
    log.ask(c, "c.0", t + 2)
    log.start(c, "c.0", t + 3)
    log.dead(c, "c.0", t + 4)
    done = log.complete(c, "c.0", t + 5)
    log.judge(c, done, t + 6)
    # A start and a judgement for a request the log never asked for; a judgement of nothing.
    log.start(d, "d.404", t + 7)
    log.judge(d, 999_999, t + 8)
    # Left queued, then superseded by a configuration change.
    log.ask(d, "d.0", t + 9)
    log.ask(c, "c.1", t + 10)
    log.add(
        ConfigApplied(at=t + 11, revision="r2", source="c.yaml", applied_by="t", removed=[d.id])
    )
    log.ask(a, "a.late", t + 12)
    return log.events


def test_a_request_the_table_holds_is_looked_up_and_not_inserted_again() -> None:
    """Asked again under an id an earlier batch asked: the first request of an id is the one,
    so the batch's inserts leave it out (and the batch looks it up to know)."""
    t = task_def(0)
    again = request.build([t], "default", "r.1", T0, T0)
    assert referenced([again]) == {"r.1"}
    known = {"r.1": Request("default", t.group, frozenset({t.id}))}
    assert "r.1" not in fold([(5, again)], known).requests
    assert "r.1" in fold([(5, again)]).requests


async def test_the_completion_index_holds_the_open_requests_only(database_url: str) -> None:
    """A completion is judged among open requests only: a request inserted already judged
    (every request of a backlog) stays out of the index that finds them, and the judging
    still finds an open one by it."""
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn, "idx")
        defs = await conn.fetch(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'idx' AND tablename = 'requests'"
        )
        [completion] = [d["indexdef"] for d in defs if "(completion_seq)" in d["indexdef"]]
        assert "WHERE" in completion and "completed" in completion
        await conn.execute("SET search_path TO idx; SET enable_seqscan = off")
        plan = await conn.fetch(f"EXPLAIN {_JUDGED}", [7], [datetime.now(UTC)])
        assert "requests_open_completion" in "\n".join(r[0] for r in plan)
    finally:
        await conn.close()


async def test_a_request_completed_and_judged_in_one_batch_is_rewritten_once(
    database_url: str,
) -> None:
    """Asked in one batch, completed and judged in the next (how the projector sees most
    checks): the request's row is updated once, not completed and then judged."""
    log, t = Log(), task_def(0)
    log.add(ConfigApplied(at=T0, revision="r1", source="c.yaml", applied_by="t", added=[t]))
    log.ask(t, "r.0", T0 + 1)
    done = log.complete(t, "r.0", T0 + 2)
    log.judge(t, done, T0 + 3)
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn, "once")
        await apply_batch(conn, log.events[:2], schema="once", notify=False)
        async with conn.transaction():
            await apply_batch(conn, log.events[2:], schema="once", notify=False)
            updated = await conn.fetchval(
                "SELECT pg_stat_get_xact_tuples_updated('once.requests'::regclass)"
            )
        row = await conn.fetchrow("SELECT status, judged_at FROM once.requests")
    finally:
        await conn.close()
    assert updated == 1
    assert (row["status"], row["judged_at"]) == ("judged", datetime.fromtimestamp(T0 + 3, UTC))


async def _fold(conn: asyncpg.Connection, schema: str, size: int) -> dict[str, Any]:
    await ensure_schema(conn, schema)
    log = a_log()
    for i in range(0, len(log), size):
        await apply_batch(conn, log[i : i + size], schema=schema, notify=False)
    tables = {
        name: [dict(r) for r in await conn.fetch(f'SELECT * FROM "{schema}".{name} ORDER BY 1, 2')]
        for name in ("tasks", "requests", "results", "severity_changes", "dead_letters")
    }
    return {"checksum": await checksum(conn, schema), **tables}


async def test_every_batch_size_folds_the_same_read_models(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        whole = await _fold(conn, "whole", 10_000)
        for size in (1, 2, 3, 5, 8):
            assert await _fold(conn, f"cut{size}", size) == whole, f"batches of {size}"
    finally:
        await conn.close()
    statuses = {r["id"]: r["status"] for r in whole["requests"]}
    assert statuses == {
        "a.0": "judged",
        "a.1": "judged",
        "a.late": "queued",
        "b.0": "judged",
        "c.0": "dead_lettered",
        "c.1": "queued",
        "d.0": "cancelled",
    }
    b0 = next(r for r in whole["requests"] if r["id"] == "b.0")
    assert (b0["deliveries"], b0["error"]) == (1, "timeout")
    assert b0["judged_at"].timestamp() == T0 + 1 + 20 + 4  # its first completion's verdict
    assert [d["reason"] for d in whole["dead_letters"] if "already completed" in d["reason"]] == [
        "check.completed: request 'b.0' already completed by agent 'a1' at seq 12"
    ]


async def test_a_request_keeps_the_tasks_it_asked_for_whatever_tokens_they_are(
    database_url: str,
) -> None:
    """A request's tasks go to PostgreSQL as an array literal: a task named like the literal's
    NULL, or of digits, dashes and underscores only, is stored as the log names it."""
    names = ["NULL", "null", "0", "-", "_a-B_9"]
    tasks = [msgspec.structs.replace(task_def(0), id=name) for name in names]
    log = Log()
    log.add(ConfigApplied(at=T0, revision="r1", source="c.yaml", applied_by="t", added=tasks))
    log.add(request.build(tasks, "default", "r.0", T0 + 1, T0 + 1))
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn, "tokens")
        await apply_batch(conn, log.events, schema="tokens", notify=False)
        stored = await conn.fetchval("SELECT tasks FROM tokens.requests WHERE id = 'r.0'")
    finally:
        await conn.close()
    assert stored == sorted(names)
