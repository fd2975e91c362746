"""When a run says it started: at once if someone follows it live or it is a redelivery, else
only once it has lasted ``SAY_STARTED_AFTER`` (``Later``).

A timer of the loop per run, armed at its start and cancelled at its answer a few
milliseconds later, was 2-3 % of an agent's CPU (py-spy): here every run waiting to be told
is one entry of a queue in the order the runs began (all wait as long), and one timer,
armed only while the queue holds any, looks at its head at most every :data:`RESOLUTION`
seconds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

#: A first delivery nobody follows live says it started only once it has run this long
#: (seconds): a check answered sooner shows its start in its completion (``started``), and
#: an event of its own for it would be a quarter of what the log, NATS and the projector
#: carry per check, for a "running" no one could have seen. A redelivery says it at once
#: (its page shows the delivery count), as does a run someone follows.
SAY_STARTED_AFTER = 1.0
#: How late past ``SAY_STARTED_AFTER`` a start may be said, seconds.
RESOLUTION = 0.1


class Later:
    """Calls ``say(key)`` ``after`` seconds after each ``add(key)``; ``say`` decides whether
    the run of ``key`` is still going (a run that ended is not told)."""

    def __init__(self, say: Callable[[str], None], after: float = SAY_STARTED_AFTER) -> None:
        self._say = say
        self._after = after
        #: (when, key), in the order added: every key waits as long, so the head is due first.
        self._due: deque[tuple[float, str]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        #: The loop of the first ``add``: ``asyncio.get_running_loop()`` is a system call
        #: (getpid) on every call in Python 3.11.
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, key: str) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        when = loop.time() + self._after
        self._due.append((when, key))
        if self._timer is None:
            self._timer = loop.call_at(when, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        due = self._due
        while due and due[0][0] <= now:
            self._say(due.popleft()[1])
        self._timer = (
            loop.call_at(max(due[0][0], now + RESOLUTION), self._tick, loop) if due else None
        )

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due.clear()
