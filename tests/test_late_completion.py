"""A request sent before NATS restarted and completed after it is judged exactly once, on
its completion: the scheduler that takes over again (its lease lost while NATS was away)
finds the request in the log outstanding, neither sends its group again at once (the
completion then answered a request no longer in force: never judged) nor gives it up before
reading the completion waiting for it ("no agent answered" while a result exists)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext

from checks import request
from configuration.config import parse
from configuration.inforce import apply_config
from events import codec, streams, subjects
from events.types import (
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    Observation,
    TaskDef,
    TaskJudged,
)
from runtime import bus
from services.scheduler.plan import spread
from tests.faults.harness import Services, config_body, js_call
from tests.helpers import DemoTarget, Stack, wait_for


@dataclass
class Case:
    #: Seconds before now the request was due (its group's give-up time: twice 10 minutes).
    ago: float
    #: Whether the group was judged before (its last verdict due when the request went out).
    judged_before: bool


CASES = {
    "a first request, sent past its give-up time": Case(3600.0, False),
    "a later request, sent past its give-up time": Case(3600.0, True),
}


@pytest.fixture
async def svc(nats_server: Any, database_url: str, demo_target: DemoTarget, tmp_path: Path) -> Any:
    """One group checked every 10 minutes, the one among 300 whose first run is the soonest:
    sent again on taking over, it goes out within seconds."""
    config = tmp_path / "tocsin.yaml"
    config.write_text(config_body(demo_target.url, [f"p{i}" for i in range(300)], "10m"))
    soonest = min(parse(config).tasks.values(), key=lambda t: spread(t.group, 600, 0))
    config.write_text(config_body(demo_target.url, [soonest.url.rsplit("/", 1)[-1]], "10m"))
    (tmp_path / "logs").mkdir()
    services = Services(nats_server.url, database_url, config, tmp_path / "logs")
    yield services
    await services.close()


async def _publish(js: JetStreamContext, subject: str, data: bytes) -> int:
    return int((await js.publish(subject, data)).seq)


def _answer(tasks: list[TaskDef], rid: str, at: float) -> CheckCompleted:
    return CheckCompleted(
        at=at,
        request=rid,
        group=tasks[0].group,
        agent="local",
        location="default",
        started=at - 0.1,
        observation=Observation(status=200),
        outcomes=[CheckOutcome(t.id, t.check, "success", "") for t in tasks],  # type: ignore[arg-type]
    )


async def _verdicts(js: JetStreamContext) -> list[TaskJudged]:
    return [
        ev
        async for m in bus.replay(js, subjects.JUDGED_ALL)
        if isinstance(ev := codec.decode(m.data, m.subject), TaskJudged)
    ]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_a_request_of_the_last_term_is_judged_once_on_its_completion(
    svc: Services, case: Case
) -> None:
    """The log as a scheduler finds it when it takes over after NATS restarted: the last
    holder's request, and its completion published once NATS was back."""
    cfg = parse(svc.config)
    tasks = list(cfg.tasks.values())
    due = time.time() - case.ago
    nc = await nats.connect(svc.nats_url)
    js = nc.jetstream()
    try:
        await streams.ensure(js, cfg.locations)
        await apply_config(js, cfg, "test")
        if case.judged_before:
            before = TaskJudged(
                at=due - 600, group=tasks[0].group, completion=0, next_run=due, judgements=[]
            )
            await _publish(js, subjects.judged(before.group), codec.encode(before))
        rid = request.scheduled_id(tasks[0].group, "default", due)
        asked = request.build(tasks, "default", rid, due, due)
        await _publish(js, subjects.requested("default", tasks[0].group), codec.encode(asked))
        answer = _answer(tasks, rid, time.time())
        seq = await _publish(
            js, subjects.completed("local", "default", answer.group), codec.encode(answer)
        )
        scheduler = svc.scheduler()
        await _judged_past(svc.nats_url, seq)
        verdicts = [v for v in await _verdicts(js) if v.completion != 0 or v.judgements]
    finally:
        await nc.close()
    assert [(v.completion, {j.severity for j in v.judgements}) for v in verdicts] == [
        (seq, {"ok"})
    ], scheduler.output()[-3000:]
    assert "not judged" not in scheduler.output()


async def test_a_request_sent_before_nats_restarted_is_judged_on_its_later_completion(
    svc: Services, nats_server: Any
) -> None:
    """NATS restarts while a request is out; the scheduler loses its lease meanwhile, takes
    it again once NATS is back, and only then does the agent's completion land."""
    stack = Stack(svc.nats_url, None, svc.config)
    scheduler = stack.scheduler(lease_ttl=3.0)
    nc = await nats.connect(svc.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    try:
        sent = await wait_for(lambda: _value(dict(scheduler.in_flight)), 60, what="a request")
        ((group, due),) = sent.items()
        tasks = scheduler.groups[group]
        rid = request.scheduled_id(group, "default", due)
        nats_server.stop()
        await wait_for(lambda: _value(not scheduler.groups), 60, what="the lease lost")
        nats_server.start()

        async def taken_over() -> bool:
            # Waiting for that request's answer again, or (as it did) sending its group anew.
            if scheduler.in_flight.get(group) == due:
                return True
            return any(r != rid for r in await _requests(js, group))

        await wait_for(taken_over, 60, what="the scheduler leading again")
        answer = _answer(tasks, rid, time.time())
        seq = await _publish(
            js, subjects.completed("local", "default", group), codec.encode(answer)
        )
        await _judged_past(svc.nats_url, seq)
        verdicts = await _verdicts(js)
    finally:
        await stack.close()
        await nc.close()
    assert [(v.completion, {j.severity for j in v.judgements}) for v in verdicts] == [(seq, {"ok"})]


async def _requests(js: JetStreamContext, group: str) -> list[str]:
    out = []
    async for m in bus.replay(js, subjects.requested("default", group)):
        ev = codec.decode(m.data, m.subject)
        if isinstance(ev, CheckRequested):
            out.append(ev.request)
    return out


async def _value(v: Any) -> Any:
    return v


async def _judged_past(url: str, seq: int) -> None:
    async def past() -> bool:
        async def floor(js: Any) -> int:
            info = await js.consumer_info(streams.EVENTS, streams.completions_durable(0))
            return int(info.ack_floor.stream_seq)

        try:
            return int(await js_call(url, floor)) >= seq
        except Exception:  # the scheduler has not made its consumer yet
            return False

    await wait_for(past, 60, what=f"the scheduler past sequence {seq}")
