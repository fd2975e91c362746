"""Three sharded scheduler replicas under load: one is killed with -9 and started again.

Its shards move to the two others once its lease and membership key expire, and back to
it when it returns; no request is sent twice for one run, none is lost (the fault tests'
invariant), and every group keeps being dispatched throughout.
"""

from __future__ import annotations

import asyncio
import re
import time

from services.scheduler.state import SchedulerOptions
from tests.faults.conftest import PATHS
from tests.faults.harness import (
    Service,
    Services,
    assert_no_duplicate_requests,
    count,
    quiesce_and_check,
)
from tests.helpers import wait_for

FREQUENCY = 2.0
SHARDS = 8
LEASE = SchedulerOptions("", "").lease_ttl
#: The longest a group may wait between two runs: its frequency, one lease for the dead
#: replica's keys to expire, and as much again for noticing, restoring and spreading on a
#: loaded machine.
LONGEST_GAP = FREQUENCY + 2 * LEASE + 2 * FREQUENCY

_HELD = re.compile(r"msg='shards held' shards='([0-9,]*)'")


def held(s: Service) -> set[int]:
    """The shards ``s`` said it held last."""
    lines = _HELD.findall(s.output())
    return {int(x) for x in lines[-1].split(",") if x} if lines else set()


async def test_kill_and_restart_a_sharded_replica(svc: Services):
    svc.projector()
    agent = svc.agent("a1")
    first = svc.scheduler(shards=SHARDS)

    async def results(n: int) -> bool:
        return await count(svc.database_url, "SELECT count(DISTINCT request) FROM results") >= n

    async def judged_groups() -> bool:
        n = await count(svc.database_url, "SELECT count(*) FROM tasks WHERE severity IS NOT NULL")
        return n >= 2 * len(PATHS)

    await wait_for(judged_groups, 90, what="every task judged by the first replica")
    others = [svc.scheduler(shards=SHARDS), svc.scheduler(shards=SHARDS)]
    replicas = [first, *others]

    async def shared(among: list[Service]) -> bool:
        holdings = [held(s) for s in among]
        every = set().union(*holdings)
        return all(holdings) and len(every) == SHARDS == sum(len(h) for h in holdings)

    await wait_for(lambda: shared(replicas), 90, what="the shards shared by three replicas")
    done = await count(svc.database_url, "SELECT count(DISTINCT request) FROM results")
    await wait_for(lambda: results(done + 100), 90, what="results with three replicas")

    victim = others[0]
    victim.kill()
    survivors = [first, others[1]]
    await wait_for(lambda: shared(survivors), 90, what="the dead replica's shards taken over")
    done = await count(svc.database_url, "SELECT count(DISTINCT request) FROM results")
    await wait_for(lambda: results(done + 100), 90, what="results after the kill")

    back = svc.scheduler(shards=SHARDS)
    replicas = [*survivors, back]
    await wait_for(lambda: shared(replicas), 90, what="the shards shared again after a restart")
    done = await count(svc.database_url, "SELECT count(DISTINCT request) FROM results")
    await wait_for(lambda: results(done + 100), 90, what="results after the restart")
    await asyncio.sleep(1)

    now = time.time()
    dues = await assert_no_duplicate_requests(svc.nats_url, FREQUENCY)
    assert len(dues) == len(PATHS)
    gaps = {
        group: max(b - a for a, b in zip([*times], [*times[1:], now], strict=True))
        for group, times in dues.items()
    }
    late = {g: round(gap, 1) for g, gap in gaps.items() if gap > LONGEST_GAP}
    assert not late, f"groups left without a run for longer than {LONGEST_GAP} s: {late}"
    await quiesce_and_check(svc, [*replicas, victim], [agent])
