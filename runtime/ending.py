"""Ending a service's tasks on a stop, for sure.

One cancellation does not surely end a task on Python 3.11: ``asyncio.wait_for`` (ours, and
nats-py's around every request) drops one that lands as what it waits for completes, and
returns that result instead. A loop that looks at no stop signal of its own then runs on:
the scheduler's lease renewal did, and a scheduler asked to stop waited for it forever (or
until a cancelled task noticed the stop by itself, for one that looks). So a task ended on
a stop is cancelled again until it has ended (:func:`ended`), and never left running
unawaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

#: Seconds a cancelled task has to end (its ``finally``: an unsubscribe, a last publish)
#: before it is cancelled again.
AGAIN = 0.5


async def ended(tasks: Iterable[asyncio.Future[Any]]) -> list[BaseException]:
    """Cancel ``tasks`` until every one has ended; what they raised besides their
    cancellation (a loop that died before it was cancelled), in their order."""
    every = list(tasks)
    pending = {t for t in every if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=AGAIN)
    return [e for t in every if not t.cancelled() and (e := t.exception()) is not None]
