"""A request is completed once: the first completion in the log (lowest stream sequence) is
its result; any later one, whoever publishes it and however late (past the stream's
duplicate window, where its message id no longer drops it), is a dead letter of the
projector, changes nothing of the request, and is never judged by the scheduler."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
import pytest
from nats.js.errors import NotFoundError

from checks import request
from configuration.config import parse
from events import codec, streams, subjects
from events.types import (
    AnyEvent,
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    CheckStarted,
    ConfigApplied,
    Observation,
    TaskDef,
    TaskJudged,
)
from readmodel import ensure_schema
from runtime import bus
from services.projector.rebuild import checksum, rebuild
from services.projector.service import Batch, apply_batch
from services.scheduler.plan import spread
from tests.faults.harness import Services, config_body, js_call, wait_projected
from tests.helpers import DemoTarget, fetch, wait_for
from tests.web_fixtures import task_def

T0 = 1_760_000_000.25
#: A task whose ids are subject tokens, as the log admits them.
_T = msgspec.structs.replace(task_def(1), id="t1", group="g1")
RID = "r.1"


def _completion(t: TaskDef, agent: str, status: str, at: float, rid: str = RID) -> CheckCompleted:
    return CheckCompleted(
        at=at,
        request=rid,
        group=t.group,
        agent=agent,
        location="default",
        started=at - 0.5,
        observation=Observation(status=200 if status == "success" else 500, elapsed_ms=5.0),
        outcomes=[CheckOutcome(t.id, t.check, status, "")],  # type: ignore[arg-type]
    )


@dataclass
class Case:
    """The log after the first completion (sequence 3): what comes again, and by whom."""

    again: list[AnyEvent]
    #: The agent the dead letters name as the one who completed the request first.
    reason: str = "request 'r.1' already completed by agent 'local' at seq 3"


def _log(case: Case) -> Batch:
    t = _T
    events: list[AnyEvent] = [
        ConfigApplied(at=T0, revision="r1", source="c.yaml", applied_by="t", added=[t]),
        request.build([t], "default", RID, T0 + 1, T0 + 1),
        _completion(t, "local", "success", T0 + 2),
        *case.again,
    ]
    return list(enumerate(events, start=1))


CASES = {
    # Its link back after more than the duplicate window, the same agent publishes again.
    "same agent, after the window": Case([_completion(_T, "local", "success", T0 + 2)]),
    # A second agent of the location: it says it started (delivery 99), then fails it.
    "another agent of the location": Case(
        [
            CheckStarted(
                at=T0 + 3,
                request=RID,
                group=_T.group,
                agent="evil",
                location="default",
                delivery=99,
            ),
            _completion(_T, "evil", "failure", T0 + 4),
        ]
    ),
    "twice more, then judged": Case(
        [
            _completion(_T, "evil", "failure", T0 + 4),
            _completion(_T, "local", "failure", T0 + 5),
            TaskJudged(at=T0 + 6, group=_T.group, completion=3, next_run=T0 + 60, judgements=[]),
        ]
    ),
}


async def _apply(database_url: str, batches: list[Batch]) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn)
        for b in batches:
            await apply_batch(conn, b)
        return await _read_model(conn)
    finally:
        await conn.close()


async def _read_model(conn: asyncpg.Connection) -> dict[str, Any]:
    req = await conn.fetchrow(
        "SELECT status, agent, deliveries, completion_seq FROM tocsin.requests WHERE id = $1",
        RID,
    )
    results = await conn.fetch("SELECT seq, agent, status FROM tocsin.results ORDER BY seq")
    dead = await conn.fetch(
        "SELECT source_seq, kind, reason FROM tocsin.dead_letters ORDER BY source_seq"
    )
    return {
        "request": dict(req) if req else None,
        "results": [dict(r) for r in results],
        "dead": [dict(r) for r in dead],
        "checksum": await checksum(conn),
    }


def _expect(case: Case, log: Batch, got: dict[str, Any]) -> None:
    assert got["request"]["agent"] == "local"
    assert got["request"]["completion_seq"] == 3
    assert got["request"]["deliveries"] == 1
    assert got["request"]["status"] == (
        "judged" if any(isinstance(ev, TaskJudged) for ev in case.again) else "completed"
    )
    assert got["results"] == [{"seq": 3, "agent": "local", "status": "success"}]
    later = [seq for seq, ev in log if isinstance(ev, CheckCompleted) and seq > 3]
    assert [d["source_seq"] for d in got["dead"]] == later
    for d in got["dead"]:
        assert d["kind"] == "refused"
        assert d["reason"] == f"check.completed: {case.reason}"


SPLITS = {
    "one batch": lambda log: [log],
    "a batch per event": lambda log: [[e] for e in log],
    "the again in a later batch": lambda log: [log[:3], log[3:]],
}


@pytest.mark.parametrize("split", list(SPLITS), ids=list(SPLITS))
@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
async def test_a_later_completion_is_a_dead_letter_however_batched(
    database_url: str, name: str, split: str
) -> None:
    log = _log(CASES[name])
    got = await _apply(database_url, SPLITS[split](log))
    _expect(CASES[name], log, got)


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
async def test_a_rebuild_from_the_log_keeps_the_first_completion(
    nats_server: Any, database_url: str, name: str
) -> None:
    log = _log(CASES[name])
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await streams.ensure(js, [])
        for seq, ev in log:
            ack = await js.publish(_subject(ev), codec.encode(ev))
            assert ack.seq == seq
    finally:
        await nc.close()
    live = await _apply(database_url, [[e] for e in log])
    assert await rebuild(nats_server.url, database_url, progress=lambda *a: None) == len(log)
    conn = await asyncpg.connect(database_url)
    try:
        rebuilt = await _read_model(conn)
    finally:
        await conn.close()
    _expect(CASES[name], log, rebuilt)
    assert rebuilt == live


def _subject(ev: AnyEvent) -> str:
    if isinstance(ev, CheckCompleted):
        return subjects.completed(ev.agent, ev.location, ev.group)
    if isinstance(ev, CheckStarted):
        return subjects.started(ev.agent, ev.location, ev.group)
    if isinstance(ev, CheckRequested):
        return subjects.requested(ev.location, ev.group)
    if isinstance(ev, TaskJudged):
        return subjects.judged(ev.group)
    return subjects.CONFIG_APPLIED


# The scheduler, against a real NATS: a task checked every 10 minutes, so the request in
# force stays the one the test answers (no agent runs: the test plays the agents).
@pytest.fixture
async def svc(nats_server: Any, database_url: str, demo_target: DemoTarget, tmp_path: Path) -> Any:
    config = tmp_path / "tocsin.yaml"
    config.write_text(config_body(demo_target.url, [f"p{i}" for i in range(300)], "10m"))
    # The path whose first run comes soonest (spread over the frequency by its group).
    soonest = min(parse(config).tasks.values(), key=lambda t: spread(t.group, 600, 0))
    path = soonest.url.rsplit("/", 1)[-1]
    demo_target.set(path, status=200, body="ok")
    config.write_text(config_body(demo_target.url, [path], "10m"))
    logs = tmp_path / "logs"
    logs.mkdir()
    services = Services(nats_server.url, database_url, config, logs)
    yield services
    await services.close()


async def test_the_scheduler_judges_only_the_first_completion_even_after_a_restart(
    svc: Services,
) -> None:
    svc.projector()
    sched = svc.scheduler()
    nc = await nats.connect(svc.nats_url)
    js = nc.jetstream()
    try:

        async def asked() -> CheckRequested | None:
            try:
                async for m in bus.replay(js, "tocsin.check.requested.default.>"):
                    ev = codec.decode(m.data, m.subject)
                    assert isinstance(ev, CheckRequested)
                    return ev
            except NotFoundError:  # the scheduler has not made the stream yet
                pass
            return None

        req = await wait_for(asked, 60, what="the first request")
        assert isinstance(req, CheckRequested)
        tasks = {c.task: c for c in req.checks}

        def answer(agent: str, status: str) -> CheckCompleted:
            return CheckCompleted(
                at=time.time(),
                request=req.request,
                group=req.group,
                agent=agent,
                location="default",
                started=time.time() - 0.1,
                observation=Observation(status=200 if status == "success" else 500),
                outcomes=[
                    CheckOutcome(tid, c.kind, status, "")  # type: ignore[arg-type]
                    for tid, c in tasks.items()
                ],
            )

        async def publish(ev: CheckCompleted) -> int:
            subject = subjects.completed(ev.agent, ev.location, ev.group)
            return int((await js.publish(subject, codec.encode(ev))).seq)

        first = await publish(answer("local", "success"))
        again = [
            await publish(answer("evil", "failure")),
            await publish(answer("local", "failure")),
        ]
        await _judged_past(svc.nats_url, again[-1])
        await sched.stop()
        # A new term restores the requests in force from the log: still completed.
        sched = svc.scheduler()
        again.append(await publish(answer("evil", "failure")))
        await _judged_past(svc.nats_url, again[-1])
        await wait_projected(svc.nats_url, svc.database_url, 30)
        verdicts = [
            ev
            async for m in bus.replay(js, subjects.JUDGED_ALL)
            if isinstance(ev := codec.decode(m.data, m.subject), TaskJudged)
        ]
    finally:
        await nc.close()
    assert [v.completion for v in verdicts] == [first]
    assert all(j.severity == "ok" for v in verdicts for j in v.judgements)
    dead = await fetch(
        svc.database_url,
        "SELECT source_seq FROM dead_letters WHERE consumer = 'projector' ORDER BY source_seq",
    )
    assert [d["source_seq"] for d in dead] == again
    assert sched.alive, sched.output()[-2000:]


async def _judged_past(url: str, seq: int) -> None:
    async def past() -> bool:
        async def floor(js: Any) -> int:
            info = await js.consumer_info(streams.EVENTS, streams.completions_durable(0))
            return int(info.ack_floor.stream_seq)

        return int(await js_call(url, floor)) >= seq

    await wait_for(past, 60, what=f"the scheduler past sequence {seq}")
