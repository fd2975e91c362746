"""Three sharded scheduler replicas under load: one is killed with -9 and started again.

Its shards move to the two others once its lease and membership key expire, and back to
it when it returns; no request is sent twice for one run, none is lost (the fault tests'
invariant), and every run goes out within one lease of its time. One paused past its lease
sends nothing of the shards taken meanwhile.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter

from nats.aio.msg import Msg

from events import subjects
from events.types import CheckRequested
from runtime import bus
from tests.faults.conftest import PATHS
from tests.faults.harness import (
    Service,
    Services,
    assert_no_duplicate_requests,
    config_body,
    count,
    quiesce_and_check,
    requests_in_log,
)
from tests.helpers import DemoTarget, wait_for

SHARDS = 8

#: A lease short enough to pause a replica past it in a few seconds (tests/faults/shortlease.py).
SHORT_LEASE = 2.0
#: A frequency of several short leases.
SLOW = 5 * SHORT_LEASE
#: How late a run may go out: one lease for a dead replica's lease to expire, a quarter for
#: another to notice (``shards.Replica`` looks every quarter TTL), and a second for reading
#: the log and the agent's answer (the next run is planned from it); 2.1 s measured.
ON_SCHEDULE = 1.25 * SHORT_LEASE + 1.0

_HELD = re.compile(r"msg='shards held' shards='([0-9,]*)'")


def held(s: Service) -> set[int]:
    """The shards ``s`` said it held last."""
    lines = _HELD.findall(s.output())
    return {int(x) for x in lines[-1].split(",") if x} if lines else set()


def short_lease_replica(svc: Services) -> Service:
    return svc._start(
        "scheduler",
        [svc.nats_url, str(svc.config), str(SHORT_LEASE), str(SHARDS)],
        module="tests.faults.shortlease",
    )


async def shared(among: list[Service]) -> bool:
    """Every shard held, each by one of ``among``, and each of them holding some."""
    holdings = [held(s) for s in among]
    every = set().union(*holdings)
    return all(holdings) and len(every) == SHARDS == sum(len(h) for h in holdings)


async def test_a_replica_paused_past_its_lease_sends_nothing_of_its_old_shards(
    svc: Services, target: DemoTarget
):
    """Resumed (SIGSTOP past its lease: a frozen VM, a swap storm), a replica's plan is of
    shards the others hold now and have sent the runs of. It cannot prove its leases by its
    own clock any more: it sends nothing until they are renewed, here lost. On the wire, no
    request goes out twice (same id), and the log holds no two of one run. The runs are a
    lease apart several times over, so that the new holders send some of the paused plan's
    runs before it resumes."""
    svc.config.write_text(config_body(target.url, PATHS, frequency=f"{SLOW:.0f}s"))
    svc.projector()
    agent = svc.agent("a1")
    nc = await bus.connect(svc.nats_url, "test")
    published: Counter[str] = Counter()

    async def requested(msg: Msg) -> None:
        if msg.subject.count(".") == 4:  # scheduled, not "check now"
            published[(msg.headers or {}).get("Nats-Msg-Id", "")] += 1

    await nc.subscribe(subjects.REQUESTED_ALL, cb=requested)
    replicas = [short_lease_replica(svc) for _ in range(3)]
    victim, survivors = replicas[0], replicas[1:]
    try:
        await wait_for(lambda: shared(replicas), 90, what="the shards shared by three replicas")
        await asyncio.sleep(SLOW)  # every group dispatched by its holder, its next run planned
        victim.signal(signal.SIGSTOP)
        await wait_for(lambda: shared(survivors), 60, what="the paused replica's shards taken")
        await asyncio.sleep(SHORT_LEASE)  # some of its planned runs sent by the new holders
        victim.signal(signal.SIGCONT)

        async def lost() -> bool:
            return "scheduler lease lost" in victim.output()

        await wait_for(lost, 30, what="the resumed replica's leases found lost")
        await asyncio.sleep(SHORT_LEASE)
    finally:
        victim.signal(signal.SIGCONT)  # never left stopped for the fixture's SIGTERM
        await bus.close(nc)
    twice = {rid: n for rid, n in published.items() if n > 1}
    assert not twice, f"requests published more than once: {list(twice.items())[:5]}"
    await assert_no_duplicate_requests(svc.nats_url, SLOW)
    await quiesce_and_check(svc, replicas, [agent])


async def test_kill_and_restart_a_sharded_replica(svc: Services, target: DemoTarget):
    """Every run goes out within one lease of its time, through a replica killed (its shards
    taken once its lease expires) and one started (shards handed over to it): the new holder
    of a group overdue by a handoff sends it at once instead of spreading it over its period.
    The runs are several leases apart, so that a run deferred by a period shows."""
    svc.config.write_text(config_body(target.url, PATHS, frequency=f"{SLOW:.0f}s"))
    svc.projector()
    agent = svc.agent("a1")
    first = short_lease_replica(svc)

    async def results(n: int) -> bool:
        return await count(svc.database_url, "SELECT count(DISTINCT request) FROM results") >= n

    async def judged_groups() -> bool:
        n = await count(svc.database_url, "SELECT count(*) FROM tasks WHERE severity IS NOT NULL")
        return n >= 2 * len(PATHS)

    async def a_run_of_each(what: str) -> None:
        done = await count(svc.database_url, "SELECT count(DISTINCT request) FROM results")
        await wait_for(lambda: results(done + len(PATHS)), 90, what=what)

    await wait_for(judged_groups, 90, what="every task judged by the first replica")
    others = [short_lease_replica(svc), short_lease_replica(svc)]
    replicas = [first, *others]
    await wait_for(lambda: shared(replicas), 90, what="the shards shared by three replicas")
    await a_run_of_each("results with three replicas")

    victim = others[0]
    victim.kill()
    survivors = [first, others[1]]
    await wait_for(lambda: shared(survivors), 90, what="the dead replica's shards taken over")
    await a_run_of_each("results after the kill")

    back = short_lease_replica(svc)
    replicas = [*survivors, back]
    await wait_for(lambda: shared(replicas), 90, what="the shards shared again after a restart")
    await a_run_of_each("results after the restart")

    now = time.time()
    await assert_no_duplicate_requests(svc.nats_url, SLOW)
    runs: dict[str, list[CheckRequested]] = {}
    for ev in (await requests_in_log(svc.nats_url)).values():
        runs.setdefault(ev.group, []).append(ev)
    assert len(runs) == len(PATHS)
    late = {}
    for group, sent in runs.items():
        sent.sort(key=lambda ev: ev.due)
        # Each run is due a period after the last one at the latest (sooner on a recheck),
        # and goes out when due; the first is spread over a period from the start.
        for last, run in zip(sent, [*sent[1:], None], strict=True):
            went = now if run is None else run.at
            if went - (last.due + SLOW) > ON_SCHEDULE:
                late[group] = round(went - (last.due + SLOW), 1)
    assert not late, f"runs later than {ON_SCHEDULE} s after their time: {late}"
    await quiesce_and_check(svc, [*replicas, victim], [agent])
