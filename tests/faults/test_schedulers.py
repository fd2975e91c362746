"""Two schedulers at once: the lease lets one dispatch; a standby takes over a dead leader."""

from __future__ import annotations

import asyncio

from tests.faults.harness import Services, assert_no_duplicate_requests, count, quiesce_and_check
from tests.helpers import wait_for

FREQUENCY = 2.0


async def test_two_schedulers_never_duplicate_requests(svc: Services):
    svc.projector()
    first = svc.scheduler()
    second = svc.scheduler()
    agent = svc.agent("a1")

    async def results(n: int) -> bool:
        return await count(svc.database_url, "SELECT count(DISTINCT request) FROM results") >= n

    await wait_for(lambda: results(120), 60, what="results with two schedulers running")
    assert await assert_no_duplicate_requests(svc.nats_url, FREQUENCY)
    # The leader dies without releasing its lease: the standby takes over after the TTL,
    # with requests of the dead one still outstanding.
    leader = first if "lease acquired" in first.output() else second
    assert "lease acquired" in leader.output()
    assert "lease acquired" not in (second if leader is first else first).output()
    done = await count(svc.database_url, "SELECT count(DISTINCT request) FROM results")
    leader.kill()
    await wait_for(lambda: results(done + 200), 90, what="dispatching resumed by the standby")
    await asyncio.sleep(1)
    await assert_no_duplicate_requests(svc.nats_url, FREQUENCY)
    await quiesce_and_check(svc, [first, second], [agent])
