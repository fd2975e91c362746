"""Two schedulers at once: the lease lets one dispatch; a standby takes over a dead leader."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict

from tests.faults.harness import Services, count, quiesce_and_check, requests_in_log
from tests.helpers import wait_for

FREQUENCY = 2.0


async def _assert_no_duplicate_requests(url: str) -> int:
    dues: dict[tuple[str, str], list[float]] = defaultdict(list)
    for ev in (await requests_in_log(url)).values():
        dues[(ev.group, ev.location)].append(ev.due)
    close = []
    for key, times in dues.items():
        times.sort()
        # Two requests of one group for (nearly) the same run: two dispatchers at work.
        close += [(key, a, b) for a, b in itertools.pairwise(times) if b - a < FREQUENCY / 2]
    assert not close, f"duplicate requests: {close[:5]}"
    return sum(len(t) for t in dues.values())


async def test_two_schedulers_never_duplicate_requests(svc: Services):
    svc.projector()
    first = svc.scheduler()
    second = svc.scheduler()
    agent = svc.agent("a1")

    async def results(n: int) -> bool:
        return await count(svc.database_url, "SELECT count(DISTINCT request) FROM results") >= n

    await wait_for(lambda: results(120), 60, what="results with two schedulers running")
    assert await _assert_no_duplicate_requests(svc.nats_url) > 0
    # The leader dies without releasing its lease: the standby takes over after the TTL,
    # with requests of the dead one still outstanding.
    leader = first if "lease acquired" in first.output() else second
    assert "lease acquired" in leader.output()
    assert "lease acquired" not in (second if leader is first else first).output()
    done = await count(svc.database_url, "SELECT count(DISTINCT request) FROM results")
    leader.kill()
    await wait_for(lambda: results(done + 200), 90, what="dispatching resumed by the standby")
    await asyncio.sleep(1)
    await _assert_no_duplicate_requests(svc.nats_url)
    await quiesce_and_check(svc, [first, second], [agent])
