"""Every scheduler of a deployment splits the task groups the same way, or none dispatches.

Replicas started with different ``--shards`` would hash a group into different shards and
hold leases of the same names meaning different groups: some groups sent twice, others
never. An unsharded scheduler next to sharded replicas would dispatch every group besides
them. So each scheduler, standby or active, says its number of shards in the lease bucket
(``scheduler.layout``, expiring with the bucket's TTL once none says it any more) every
quarter TTL, and one that finds another number there refuses: at its start before it takes
any lease, with the reason and what to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from events import streams
from runtime.logs import Log

log = Log("tocsin.scheduler.layout")

KEY = "scheduler.layout"
#: Writes tried in one ``say`` while peers write in between.
ATTEMPTS = 10


class LayoutConflict(Exception):
    """This scheduler's ``--shards`` is not the one of the schedulers running."""


def conflict(mine: int, found: bytes | None, ttl: float) -> str | None:
    """Why a scheduler with ``mine`` shards must not run next to those that said ``found``
    (None: nothing said, or the same)."""
    if found is None or found == str(mine).encode():
        return None
    theirs = found.decode(errors="replace")
    return (
        f"the schedulers running use --shards {theirs}, this one --shards {mine}: each would "
        f"send groups the others send too, and leave some unsent; start every scheduler with "
        f"the same --shards (to change it, stop them all: the number in force is forgotten "
        f"{ttl:g} s after the last one stopped)"
    )


async def say(kv: KeyValue, mine: int, ttl: float) -> None:
    """Say ``mine`` unless another number is in force: ``LayoutConflict`` then. Written by
    compare-and-set, so of two schedulers with different numbers starting at once, the
    second to write reads the first's number and is refused before it takes any lease."""
    value = str(mine).encode()
    for _ in range(ATTEMPTS):
        try:
            entry = await kv.get(KEY)
        except NotFoundError:  # never said, expired, or deleted
            try:
                await kv.create(KEY, value)
                return
            except KeyWrongLastSequenceError:
                continue  # said by another in between: read what
        reason = conflict(mine, entry.value, ttl)
        if reason is not None:
            raise LayoutConflict(reason)
        try:
            await kv.update(KEY, value, last=entry.revision)
            return
        except KeyWrongLastSequenceError:
            continue  # said again by a peer in between (or expired): read it again
    # Peers writing between each read and write: waiting cures it (said next time).
    raise TimeoutError(f"{KEY}: changed under {ATTEMPTS} writes in a row")


async def first_said(
    bucket: Callable[[], Awaitable[KeyValue]], mine: int, ttl: float, stopping: asyncio.Event
) -> bool:
    """``say``, retried while NATS or the bucket is out of reach; False when asked to stop
    first. Nothing is dispatched before: a ``LayoutConflict`` is raised at once."""

    async def attempt() -> None:
        await say(await bucket(), mine, ttl)

    return await streams.retrying("saying the number of shards", attempt, stopping)


async def keep_saying(bucket: Callable[[], Awaitable[KeyValue]], mine: int, ttl: float) -> None:
    """``say`` every quarter TTL for as long as the scheduler runs (a failure logged once
    while it lasts: said again next time); ends only by raising ``LayoutConflict`` (another
    number said while NATS was away from all the schedulers running for longer than the TTL)."""
    failing = False
    while True:
        await asyncio.sleep(ttl / 4)
        try:
            await say(await bucket(), mine, ttl)
            failing = False
        except LayoutConflict:
            raise
        except Exception as exc:
            if not failing:
                log.warning(
                    "could not say the number of shards", error=str(exc) or type(exc).__name__
                )
            failing = True
