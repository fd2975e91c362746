"""The worker processes of one agent (``tocsin agent --processes N``, ``workers.py``), as the
one that runs here sees them: the first speaks for the agent (heartbeats, host figures), the
others tell it their counts through memory shared before the fork."""

from __future__ import annotations

import multiprocessing


class Team:
    """The worker processes of one agent, as the one that runs here sees them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.index = 0  # set in each worker after the fork
        # In flight and completed, two slots per worker; each writes only its own.
        self._counts = multiprocessing.RawArray("q", 2 * size)

    @property
    def speaks(self) -> bool:
        """The first worker alone publishes heartbeats and host figures."""
        return self.index == 0

    def tell(self, in_flight: int, completed: int) -> None:
        self._counts[2 * self.index] = in_flight
        self._counts[2 * self.index + 1] = completed

    def totals(self, in_flight: int, completed: int) -> tuple[int, int]:
        """The whole agent's counts: ours now, the others' as they last told them."""
        self.tell(in_flight, completed)
        counts = self._counts[:]
        return sum(counts[0::2]), sum(counts[1::2])
