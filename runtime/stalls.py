"""Noticing that this process did not run for a while: stopped (SIGSTOP, a debugger), a VM
frozen, a swap storm. What a loop did not hear meanwhile was not silent: a host's figures, a
heartbeat's pings and an agent's answers wait in the streams, read once it runs again. A
loop that judges silence calls :meth:`Stalls.gap` once per turn and counts silence from the
end of a stall, as it does from its start (the scheduler restarted)."""

from __future__ import annotations

import time


class Stalls:
    def __init__(self, allowed: float) -> None:
        #: Seconds a turn of the loop may take (its own wait included) without being a stall.
        self.allowed = allowed
        self._last = time.monotonic()

    def gap(self) -> float:
        """Seconds since the last call when more than ``allowed`` passed (a stall), else 0."""
        now = time.monotonic()
        gap, self._last = now - self._last, now
        return gap if gap > self.allowed else 0.0
