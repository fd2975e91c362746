"""When each request group runs: a heap of due times, so an idle tick costs O(1).

Pure bookkeeping; the service does the publishing. A group's entry carries a
generation number so that rescheduling or removing a group leaves the old
heap entry harmless (lazy deletion) instead of searching the heap.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from dataclasses import replace

from checks.request import give_up_after
from events.streams import Tuning
from events.types import TaskDef


def spread(group: str, frequency: float, now: float) -> float:
    """A first run somewhere in the next ``frequency`` seconds, fixed per group.

    Spreading first runs avoids a thundering herd when thousands of tasks
    start at once; deriving the offset from the group keeps it stable across
    restarts.
    """
    h = int.from_bytes(hashlib.sha256(group.encode()).digest()[:8], "big")
    return now + (h % 1_000_000) / 1_000_000 * frequency


def work_tuning(t: Tuning, dispatched: Iterable[TaskDef]) -> Tuning:
    """``t`` with how long WORK keeps a request: past the longest give-up time of the tasks
    ``dispatched``, the scheduler has judged a request unknown and sent its group's next one,
    so an agent that took it then would check for nothing; plus the deliveries that
    dead-letter one taken just before. Without it WORK kept what no agent ever completed."""
    longest = max((give_up_after([task]) for task in dispatched), default=0.0)
    return replace(t, work_max_age=longest + t.ack_wait * t.max_deliver)


def shard_of(group: str, shards: int) -> int:
    """The shard a group belongs to: fixed by its id, the same in every replica."""
    if shards == 1:  # unsharded: no hash for each completion
        return 0
    h = int.from_bytes(hashlib.sha256(group.encode()).digest()[8:16], "big")
    return h % shards


class Plan:
    def __init__(self) -> None:
        #: (due, group): plain tuples, compared in C and smaller than objects. An entry is
        #: live while ``_due`` holds its time for its group (as ``Outstanding``'s): a group set
        #: again or removed leaves a stale one, passed over, with no count of generations kept
        #: beside (a dict of 50,000 entries at 100,000 tasks, and a lookup more per verdict).
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, group: str) -> bool:
        return group in self._due

    def due_of(self, group: str) -> float | None:
        return self._due.get(group)

    def set(self, group: str, due: float) -> None:
        self._due[group] = due
        heapq.heappush(self._heap, (due, group))

    def remove(self, group: str) -> None:
        self._due.pop(group, None)

    def next_due(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, limit: int = 10_000) -> list[tuple[str, float]]:
        """Groups due at ``now`` (at most ``limit``), removed from the plan."""
        out: list[tuple[str, float]] = []
        heap, planned = self._heap, self._due
        while heap and len(out) < limit and heap[0][0] <= now:
            due, group = heapq.heappop(heap)
            # Live only while the plan holds this time for it: the same time set twice is
            # one entry live, the other found stale once the first took the group out.
            if planned.get(group) == due:
                del planned[group]
                out.append((group, due))
        return out

    def _drop_stale(self) -> None:
        heap, planned = self._heap, self._due
        while heap and planned.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)


class Outstanding:
    """Requests sent and not answered yet, each with the time past which it is given up:
    a heap of those deadlines, so that a tick looks at the expired ones only (scanning every
    group outstanding was most of the scheduler's CPU at 100,000 tasks).

    ``due`` maps each outstanding group to the due time of its request, as a dict does; an
    entry of the heap whose group was answered, removed or sent again is passed over."""

    def __init__(self) -> None:
        self.due: dict[str, float] = {}
        self._deadlines: list[tuple[float, float, str]] = []

    def add(self, group: str, due: float, limit: float) -> None:
        self.due[group] = due
        heapq.heappush(self._deadlines, (due + limit, due, group))
        # An answered request leaves its entry until its limit, two periods on: the heap held
        # two periods of requests (10 MB at 100,000 tasks a minute) for the few in flight.
        # Rebuilt from the live entries once the others are most of it: amortized O(1).
        if len(self._deadlines) > 2 * len(self.due) + 1024:
            self._deadlines = [e for e in self._deadlines if self.due.get(e[2]) == e[1]]
            heapq.heapify(self._deadlines)

    def postpone(self, by: float) -> None:
        """Every deadline ``by`` seconds later: the scheduler stalled that long and read no
        answer meanwhile (they wait in the stream). The same shift keeps the heap ordered."""
        self._deadlines = [(deadline + by, due, g) for deadline, due, g in self._deadlines]

    def expired(self, now: float) -> list[tuple[str, float]]:
        """Groups whose request is older than its limit at ``now``, removed."""
        out = []
        heap = self._deadlines
        while heap and heap[0][0] < now:
            _, due, group = heapq.heappop(heap)
            if self.due.get(group) == due:
                del self.due[group]
                out.append((group, due))
        return out
