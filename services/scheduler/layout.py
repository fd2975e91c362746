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

from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from runtime.logs import Log

log = Log("tocsin.scheduler.layout")

KEY = "scheduler.layout"


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
    """Say ``mine`` unless another number is in force: ``LayoutConflict`` then."""
    try:
        found: bytes | None = (await kv.get(KEY)).value
    except NotFoundError:  # never said, expired, or deleted
        found = None
    reason = conflict(mine, found, ttl)
    if reason is not None:
        raise LayoutConflict(reason)
    await kv.put(KEY, str(mine).encode())


async def check(
    bucket: Callable[[], Awaitable[KeyValue]], mine: int, ttl: float, quiet: bool = False
) -> bool:
    """``say``; NATS away is passed over (said again a quarter TTL later), False then, and
    logged unless ``quiet``."""
    try:
        await say(await bucket(), mine, ttl)
        return True
    except LayoutConflict:
        raise
    except Exception as exc:
        if not quiet:
            log.warning("could not say the number of shards", error=str(exc) or type(exc).__name__)
        return False


async def keep_saying(bucket: Callable[[], Awaitable[KeyValue]], mine: int, ttl: float) -> None:
    """``check`` every quarter TTL for as long as the scheduler runs (an outage of NATS
    logged once); ends only by raising ``LayoutConflict`` (another number said in between:
    two started at once)."""
    said = True
    while True:
        await asyncio.sleep(ttl / 4)
        said = await check(bucket, mine, ttl, quiet=not said)
