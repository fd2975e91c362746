"""An agent dies (kill -9) or is told to stop (SIGTERM) while it holds requests."""

from __future__ import annotations

import asyncio
import signal
import time

from events import streams
from tests.faults.conftest import PATHS
from tests.faults.harness import (
    Services,
    count,
    js_call,
    quiesce_and_check,
    results_by_agent,
)
from tests.helpers import DemoTarget, wait_for


async def _held(url: str) -> int:
    async def get(js):  # type: ignore[no-untyped-def]
        info = await js.consumer_info(streams.WORK, streams.agent_consumer_name("default"))
        return info.num_ack_pending

    return int(await js_call(url, get))


async def test_killed_agent_requests_are_redelivered_to_another(svc: Services, target: DemoTarget):
    # The target answers slower than the agent gets through its queue: at any moment the
    # agent holds requests it has not completed yet.
    for p in PATHS:
        target.set(p, delay=1.5)
    svc.projector()
    scheduler = svc.scheduler(ack_wait=3.0)
    first = svc.agent("a1")

    async def working() -> bool:
        return (await results_by_agent(svc.database_url)).get("a1", 0) >= 10 and await _held(
            svc.nats_url
        ) > 0

    await wait_for(working, 60, what="a1 completing and holding requests")
    killed_at = time.time()
    first.kill()
    second = svc.agent("a2")

    async def taken_over() -> int:
        # Requests due before the kill that a2 completed: only a redelivery gives them to it.
        return await count(
            svc.database_url,
            "SELECT count(*) FROM results r WHERE agent = 'a2' "
            "AND checked_at > to_timestamp($1) AND request IN (SELECT request "
            "FROM results) AND split_part(request, '.', 3)::bigint < $2",
            killed_at,
            int(killed_at * 1000),
        )

    await wait_for(taken_over, 60, what="a2 completing requests a1 held")
    await asyncio.sleep(2)
    stats = await quiesce_and_check(svc, [scheduler], [second])
    assert stats["dead"] == 0


async def test_sigterm_agent_finishes_what_it_holds(svc: Services, target: DemoTarget):
    for p in PATHS:
        target.set(p, delay=1.0)
    svc.projector()
    # A long ack_wait: a request the stopping agent dropped would stay held for 60s, far
    # beyond the waits below, so finishing in time proves nothing was left to redelivery.
    scheduler = svc.scheduler(ack_wait=60.0)
    agent = svc.agent("a1")

    async def holding() -> bool:
        return (await results_by_agent(svc.database_url)).get("a1", 0) >= 5 and await _held(
            svc.nats_url
        ) > 0

    await wait_for(holding, 60, what="a1 holding requests")
    agent.signal(signal.SIGTERM)
    code = await agent.wait(30)
    assert code == 0, agent.output()

    async def released() -> bool:
        return await _held(svc.nats_url) == 0

    # Everything a1 held was completed and acked by a1 itself, before it exited.
    assert await _held(svc.nats_url) == 0

    async def redelivered(js):  # type: ignore[no-untyped-def]
        info = await js.consumer_info(streams.WORK, streams.agent_consumer_name("default"))
        return info.num_redelivered

    assert await js_call(svc.nats_url, redelivered) == 0
    second = svc.agent("a2")
    await wait_for(released, 30, what="nothing held")
    stats = await quiesce_and_check(svc, [scheduler], [second])
    assert stats["dead"] == 0
