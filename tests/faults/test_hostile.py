"""A hostile or broken publisher on every subject a service may publish on.

Every other event type on each subject, fields contradicting the subject, completions of
requests that do not exist, and property-based bodies (numbers beyond float and int64,
huge and empty strings, NUL, deep nesting, missing and extra fields). After each batch:
every service still runs, every hostile message is a dead letter of the projector exactly
once (or, valid, applied), nothing a user sees changed, nothing real was lost, and a
rebuild equals the live read models.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import nats
from hypothesis import HealthCheck, given, settings

from events import codec, contract, streams, subjects
from events.types import (
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    Event,
    Observation,
    TaskJudged,
)
from runtime import bus
from tests.faults.harness import (
    Services,
    count,
    js_call,
    last_seq,
    quiesce_and_check,
    wait_projected,
)
from tests.helpers import fetch, wait_for
from tests.test_contract import hostile_message
from tests.test_events import SAMPLES


def _now(event: Event) -> dict[str, Any]:
    """A sample event as JSON, dated now (the samples are dated 2023)."""
    raw = msgspec.json.decode(codec.encode(event))
    return {**raw, "at": time.time()}


def _publisher_subjects(agent: str, group: str) -> list[str]:
    """Every subject an agent, the scheduler or the notifier may publish on."""
    return [
        subjects.completed(agent, "default", group),
        subjects.started(agent, "default", group),
        subjects.heartbeat(agent, "default"),
        subjects.host_observed(agent, "default"),
        subjects.agent_deadletter(agent),
        subjects.host_tasks(agent),
        subjects.CONFIG_APPLIED,
        subjects.requested("default", group),
        subjects.judged(group),
        subjects.deadletter("undecodable"),
        subjects.deadletter("max_deliver"),
        subjects.notification("sent"),
        subjects.notification("failed"),
        subjects.silence("added"),
        subjects.silence("removed"),
    ]


def _wrong_types(agent: str, group: str) -> list[tuple[str, bytes]]:
    out = []
    for subject in _publisher_subjects(agent, group):
        for event in SAMPLES:
            data = msgspec.json.encode(_now(event))
            try:
                codec.decode(data, subject)
            except codec.DecodeError:
                out.append((subject, data))
    return out


def _mismatched(agent: str, group: str, task: str, rid: str) -> list[tuple[str, bytes]]:
    """Bodies whose agent, location or group contradict their subject, and completions of
    requests the log does not have (with the agent's own name and a real task)."""
    enc = msgspec.json.encode
    beat = next(_now(e) for e in SAMPLES if type(e).__name__ == "AgentHeartbeat")
    req = next(_now(e) for e in SAMPLES if type(e).__name__ == "CheckRequested")
    judged = next(_now(e) for e in SAMPLES if type(e).__name__ == "TaskJudged")
    dead = next(_now(e) for e in SAMPLES if type(e).__name__ == "DeadLettered")
    dead |= {"consumer": f"agent:{agent}", "seq": 1}
    forged = CheckCompleted(
        at=time.time(),
        request=f"{group}.default.1",
        group=group,
        agent=agent,
        location="default",
        started=time.time(),
        observation=Observation(status=500),
        outcomes=[CheckOutcome(task, "status-is", "failure", "forged")],
    )
    unknown = msgspec.structs.replace(forged, request="no-such-request")
    elsewhere = msgspec.structs.replace(forged, location="elsewhere")
    # Finding 1 of issue 10: verdicts and configurations through an agent's subject.
    critical = {
        **judged,
        "group": group,
        "judgements": [{"task": task, "severity": "critical", "previous": "ok", "reason": "x"}],
    }
    hide = {"type": "config.applied", "v": 1, "at": time.time(), "revision": "r", "source": "s"}
    hide |= {"applied_by": "agent", "removed": [task]}
    return [
        (subjects.completed(agent, "default", group), enc(critical)),
        (subjects.completed(agent, "default", group), enc(hide)),
        (subjects.heartbeat(agent, "default"), enc({**beat, "agent": "fake-agent"})),
        (
            subjects.heartbeat(agent, "default"),
            enc({**beat, "agent": agent, "location": "nowhere"}),
        ),
        (
            subjects.completed(agent, "default", group),
            codec.encode(msgspec.structs.replace(forged, agent="x")),
        ),
        (subjects.completed(agent, "default", "other"), codec.encode(forged)),
        (subjects.completed(agent, "default", group), codec.encode(forged)),
        (subjects.completed(agent, "default", group), codec.encode(unknown)),
        (subjects.completed(agent, "default", group), codec.encode(elsewhere)),
        (subjects.requested("default", group), enc({**req, "location": "elsewhere"})),
        (subjects.judged(group), enc({**judged, "group": "other"})),
        # A request's end, claimed on the agent's own dead-letter subject.
        (subjects.agent_deadletter(agent), enc({**dead, "kind": "max_deliver", "request": rid})),
    ]


def _property_based(n: int) -> list[tuple[str, bytes]]:
    """``n`` bodies drawn by hypothesis, on the agent's own subjects (what a compromised
    agent can publish at all)."""
    out: list[tuple[str, bytes]] = []

    @settings(
        max_examples=n,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile_message())
    def collect(msg: tuple[bytes, str]) -> None:
        out.append((msg[1], msg[0]))

    collect()
    agent_subjects = (
        "tocsin.check.completed.",
        "tocsin.check.started.",
        "tocsin.agent.heartbeat.",
        "tocsin.host.observed.",
        "tocsin.deadletter.",
    )
    return [(s, d) for s, d in out if s.startswith(agent_subjects)]


async def _publish(url: str, messages: list[tuple[str, bytes]]) -> dict[int, tuple[str, bytes]]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    out = {}
    try:
        for subject, data in messages:
            ack = await js.publish(subject, data)
            out[ack.seq] = (subject, data)
    finally:
        await nc.close()
    return out


async def _completions_judged(url: str) -> dict[int, int]:
    """Each verdict in the log (its sequence) and the sequence of the completion it judged."""
    out: dict[int, int] = {}
    nc = await nats.connect(url)
    try:
        async for m in bus.replay(nc.jetstream(), subjects.JUDGED_ALL):
            with contextlib.suppress(codec.DecodeError):  # the hostile batches' bodies
                if isinstance(ev := codec.decode(m.data, m.subject), TaskJudged):
                    out[m.metadata.sequence.stream] = ev.completion
    finally:
        await nc.close()
    return out


async def test_hostile_publishers_change_nothing_and_lose_nothing(svc: Services):
    procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]
    await wait_for(
        lambda: count(svc.database_url, "SELECT count(*) FROM results"), 60, what="results"
    )
    task = (await fetch(svc.database_url, "SELECT id, grp FROM tasks ORDER BY id LIMIT 1"))[0]
    group, tid = task["grp"], task["id"]
    rid = (await fetch(svc.database_url, "SELECT request FROM results LIMIT 1"))[0]["request"]

    batches: list[tuple[str, Callable[[], list[tuple[str, bytes]]]]] = [
        ("wrong types", lambda: _wrong_types("a1", group)),
        ("mismatched fields and unknown requests", lambda: _mismatched("a1", group, tid, rid)),
        ("property-based bodies", lambda: _property_based(300)),
    ]
    for name, make in batches:
        # Drawn off the event loop: it also serves the checked target, which a second or more
        # of drawing would leave unanswered.
        published = await _publish(svc.nats_url, await asyncio.to_thread(make))
        assert published, name
        await wait_projected(svc.nats_url, svc.database_url, 60)
        assert all(p.alive for p in procs), [p.output()[-2000:] for p in procs if not p.alive]
        dead = await fetch(
            svc.database_url,
            "SELECT source_seq, count(*) AS n FROM dead_letters "
            "WHERE consumer = 'projector' AND source_seq = ANY($1::bigint[]) GROUP BY source_seq",
            list(published),
        )
        recorded = {r["source_seq"]: r["n"] for r in dead}
        assert all(n == 1 for n in recorded.values()), f"{name}: dead-lettered twice"
        for seq, (subject, data) in published.items():
            try:
                event = codec.decode(data, subject)
            except codec.DecodeError:
                assert recorded.get(seq) == 1, f"{name}: {subject} {data[:200]!r} not recorded"
                continue
            # Valid for its subject: an agent speaking of itself. It may be applied, or
            # refused (a completion of no request) but then recorded once.
            assert contract.problem(subject, event) is None
            if isinstance(event, CheckCompleted):
                assert recorded.get(seq) == 1, f"{name}: completion of no request stored"

    # Nothing a user sees came from the forgeries.
    assert not await fetch(svc.database_url, "SELECT 1 FROM agents WHERE name <> 'a1'")
    assert not await fetch(
        svc.database_url,
        "SELECT 1 FROM results WHERE agent <> 'a1' OR request NOT IN (SELECT id FROM requests)",
    )
    assert not await fetch(svc.database_url, "SELECT 1 FROM tasks WHERE removed_at IS NOT NULL")
    assert not await fetch(svc.database_url, "SELECT 1 FROM results WHERE detail = 'forged'")
    assert not await fetch(
        svc.database_url, "SELECT 1 FROM requests WHERE status = 'dead_lettered'"
    )
    # The forged verdict (reason "x") never lands, nor one judged from a forged completion:
    # a critical states the failure of a completion the read models hold (a forged one is
    # refused, no result). A real failure is no forgery: on a loaded machine the target may
    # not answer within the task's timeout ("timeout: no answer within 5s").
    judged = await _completions_judged(svc.nats_url)
    failures = {
        (r["task_id"], r["seq"]): r["detail"]
        for r in await fetch(
            svc.database_url,
            "SELECT r.task_id, r.seq, r.detail FROM results r JOIN requests q "
            "ON q.id = r.request WHERE r.agent = 'a1' AND r.status = 'failure'",
        )
    }
    forgeries = [
        {**c, "completion": judged.get(c["seq"])}
        for c in await fetch(
            svc.database_url,
            "SELECT seq, task_id, previous, severity, reason FROM severity_changes "
            "WHERE reason = 'x' OR severity = 'critical'",
        )
        if c["reason"] == "x" or failures.get((c["task_id"], judged.get(c["seq"]))) != c["reason"]
    ]
    assert not forgeries, f"verdicts of no real failure: {forgeries}; failures: {failures}"
    assert await last_seq(svc.nats_url) > 0
    # Every request completed once or dead-lettered, and the rebuild equals the live models.
    stats = await quiesce_and_check(svc, [procs[1]], [procs[2]])
    assert stats["dead"] == 0
    assert procs[0].alive, procs[0].output()[-2000:]


async def test_a_completion_the_projector_refuses_is_never_judged(svc: Services):
    """An answer to the request in force, with outcomes for a task it did not ask for: the
    projector refuses it whole (no result); the scheduler judged the rest of it, a verdict
    whose result the read models never had."""
    procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]
    await wait_for(
        lambda: count(svc.database_url, "SELECT count(*) FROM results"), 60, what="results"
    )
    await procs[2].stop()  # the requests in force stay unanswered
    task = (await fetch(svc.database_url, "SELECT task_id AS id, grp FROM results LIMIT 1"))[0]
    nc = await nats.connect(svc.nats_url)
    try:
        js = nc.jetstream()
        raw = await js.get_last_msg(streams.EVENTS, subjects.requested("default", task["grp"]))
        req = codec.decode(raw.data or b"", raw.subject or "")
        assert isinstance(req, CheckRequested)
        forged = CheckCompleted(
            at=time.time(),
            request=req.request,
            group=req.group,
            agent="a1",
            location="default",
            started=time.time(),
            observation=Observation(status=500),
            outcomes=[
                CheckOutcome(task["id"], "status-is", "failure", "forged"),
                CheckOutcome("not-asked", "status-is", "failure", "forged"),
            ],
        )
        seq = (
            await js.publish(subjects.completed("a1", "default", req.group), codec.encode(forged))
        ).seq
    finally:
        await nc.close()

    async def judged_up_to_it() -> bool:
        async def floor(js: Any) -> int:
            info = await js.consumer_info(streams.EVENTS, streams.completions_durable(0))
            return int(info.ack_floor.stream_seq)

        return int(await js_call(svc.nats_url, floor)) >= seq

    await wait_for(judged_up_to_it, 30, what="the scheduler past the forged completion")
    await wait_projected(svc.nats_url, svc.database_url, 30)
    assert await fetch(
        svc.database_url,
        "SELECT 1 FROM dead_letters WHERE consumer = 'projector' AND source_seq = $1",
        seq,
    )
    nc = await nats.connect(svc.nats_url)
    try:
        verdicts = [
            ev
            async for m in bus.replay(nc.jetstream(), subjects.JUDGED_ALL)
            if isinstance(ev := codec.decode(m.data, m.subject), TaskJudged)
            and ev.completion == seq
        ]
    finally:
        await nc.close()
    assert not verdicts, verdicts
    assert all(p.alive for p in procs[:2])
