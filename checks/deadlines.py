"""One timer for the deadlines of every request in flight, instead of one per request.

A request's timeout used to be aiohttp's own: a timer handle, a timeout context and its
callbacks, built and torn down for each request although almost every request ends long
before its deadline. Here each request adds one entry to a heap, and one timer, running only
while requests are in flight, looks every :data:`RESOLUTION` seconds at the earliest ones.
A request past its deadline is cancelled and raises ``TimeoutError``, as within
``asyncio.timeout`` (a cancellation from elsewhere stays a cancellation).

``Deadlines`` serve the loop of their first use: ``asyncio.get_running_loop()`` (and
``current_task()`` without its loop) asks the system for the process id on every call
(Python 3.11, so that a forked child does not take its parent's loop), a system call per
request that was 1 % of an agent's CPU (py-spy ``--native``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from types import TracebackType

#: How late past its deadline a request may be stopped, in seconds.
RESOLUTION = 0.1
#: Heap size past which the entries of ended blocks are swept out when they are most of it.
COMPACT_FROM = 1024


class Deadline:
    """The deadline of one block of one task; a context manager, from :meth:`Deadlines.within`."""

    __slots__ = ("cancelling", "done", "expired", "owner", "task")

    def __init__(self, owner: Deadlines, task: asyncio.Task[object]) -> None:
        self.owner = owner
        self.task: asyncio.Task[object] | None = task
        self.cancelling = task.cancelling()
        self.expired = False
        self.done = False

    def __enter__(self) -> Deadline:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self.task = self.task, None  # its entry may outlive it: not the task with it
        self.done = True
        self.owner.open -= 1
        # As asyncio.timeout: the cancellation is ours only if nobody else also asked the task
        # to stop since the block began (uncancel counts the requests).
        if self.expired and task is not None and task.uncancel() <= self.cancelling:
            if kind is asyncio.CancelledError:
                raise TimeoutError from exc


class Deadlines:
    def __init__(self, resolution: float = RESOLUTION) -> None:
        self.resolution = resolution
        self.open = 0  # blocks not ended yet; the heap also holds the entries of ended ones
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()  # equal times never compare two Deadlines
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def within(self, seconds: float) -> Deadline:
        """``with deadlines.within(s):`` the block ends with ``TimeoutError`` after ``s``."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline needs a running task (of the loop of its first use)")
        deadline = Deadline(self, task)
        heapq.heappush(self._heap, (loop.time() + seconds, next(self._order), deadline))
        self.open += 1
        if self._timer is None:
            self._timer = loop.call_later(self.resolution, self._tick, loop)
        return deadline

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        heap = self._heap
        # Blocks that ended leave their entry behind (removing it from the middle of the heap
        # would cost more than the rare timeout): dropped when they come to the top, or all at
        # once when they are most of the heap (many requests a second, long timeouts).
        if len(heap) > COMPACT_FROM and len(heap) > 4 * self.open:
            heap[:] = [entry for entry in heap if not entry[2].done]
            heapq.heapify(heap)
        while heap and (heap[0][2].done or heap[0][0] <= now):
            deadline = heapq.heappop(heap)[2]
            if deadline.task is not None:
                deadline.expired = True
                deadline.task.cancel()
        self._timer = loop.call_later(self.resolution, self._tick, loop) if heap else None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
