"""A scheduler paused past its lease (SIGSTOP: a VM frozen, a swap storm, a debugger) loses
the lease and holds it again once it runs: dispatching never stops for good.

Resumed, every timer of the paused process fires at once and the answers of its requests
land together: the lease renewal finds the lease expired and ends the term while its loops
are answered, so the cancellation that ends them lands as their ``wait_for`` completes, which
Python 3.11 drops. A loop that dropped it ran on, the term never ended, and the scheduler
dispatched nothing again, holding no lease (a pause of about a minute, with the default TTL,
every time). Here the lease lasts a second and the pause a few.
"""

from __future__ import annotations

import asyncio
import signal
import time

from nats.aio.msg import Msg

from events import subjects
from runtime import bus
from tests.faults.harness import Service, Services
from tests.helpers import wait_for

TTL = 1.0
#: Pauses in a row: each one is a chance for the race, which does not come every time.
PAUSES = 6


def _short_lease_scheduler(svc: Services) -> Service:
    return svc._start(
        "scheduler",
        [svc.nats_url, str(svc.config), str(TTL)],
        module="tests.faults.shortlease",
    )


async def test_a_scheduler_paused_past_its_lease_dispatches_again(svc: Services) -> None:
    svc.agent("a1")
    scheduler = _short_lease_scheduler(svc)
    nc = await bus.connect(svc.nats_url, "test")
    sent: list[float] = []

    async def requested(_: Msg) -> None:
        sent.append(time.monotonic())

    await nc.subscribe(subjects.REQUESTED_ALL, cb=requested)

    async def dispatching_since(t: float) -> bool:
        return any(at > t for at in sent)

    async def terms(n: int) -> bool:
        return scheduler.output().count("scheduler lease acquired") >= n

    try:
        await wait_for(lambda: dispatching_since(0), 30, what="dispatching")
        for pause in range(1, PAUSES + 1):
            scheduler.signal(signal.SIGSTOP)
            await asyncio.sleep(3 * TTL)
            scheduler.signal(signal.SIGCONT)
            await wait_for(
                lambda n=pause + 1: terms(n),  # type: ignore[misc]
                30,
                what=f"the lease held again after pause {pause}",
            )
            held = time.monotonic()
            await wait_for(
                lambda t=held: dispatching_since(t),  # type: ignore[misc]
                30,
                what=f"dispatching after pause {pause}",
            )
        assert await scheduler.stop() == 0
    finally:
        scheduler.signal(signal.SIGCONT)  # never left stopped for the fixture's SIGTERM
        await bus.close(nc)
