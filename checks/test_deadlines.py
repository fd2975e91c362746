"""The one timer for every request's deadline (checks/deadlines.py)."""

from __future__ import annotations

import asyncio

import pytest

from checks.deadlines import Deadlines


async def test_block_past_its_deadline_raises_timeout() -> None:
    deadlines = Deadlines(resolution=0.01)
    with pytest.raises(TimeoutError):
        with deadlines.within(0.05):
            await asyncio.sleep(5)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    deadlines.close()


async def test_block_that_ended_in_time_is_never_cancelled() -> None:
    deadlines = Deadlines(resolution=0.01)
    with deadlines.within(0.05):
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)  # well past the deadline: the timer must leave the task alone
    deadlines.close()


async def test_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines(resolution=3600)  # the timer is run by hand below

    async def request() -> None:
        with deadlines.within(0.01):
            await asyncio.sleep(5)

    task = asyncio.create_task(request())
    await asyncio.sleep(0.05)
    # Past the deadline, and cancelled by someone else in the same turn of the loop.
    deadlines._tick(asyncio.get_running_loop())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadlines.close()


async def test_many_blocks_each_at_its_own_deadline() -> None:
    deadlines = Deadlines(resolution=0.01)

    async def request(timeout: float, takes: float) -> str:
        try:
            with deadlines.within(timeout):
                await asyncio.sleep(takes)
        except TimeoutError:
            return "timeout"
        return "answered"

    got = await asyncio.gather(
        request(0.05, 5), request(5, 0.01), request(0.1, 5), request(5, 0.2), request(0.02, 5)
    )
    assert got == ["timeout", "answered", "timeout", "answered", "timeout"]
    deadlines.close()


async def test_ended_blocks_do_not_pile_up() -> None:
    deadlines = Deadlines(resolution=0.01)
    for _ in range(5000):  # many quick requests with a long timeout each
        with deadlines.within(3600):
            pass
    await asyncio.sleep(0.05)
    assert deadlines.open == 0
    assert len(deadlines._heap) <= 1024  # swept, not kept for an hour
    deadlines.close()
