"""Per-channel rate limits: at most ``count`` notifications per ``per`` seconds (sliding).

Pure: the sender counts what the channel was sent in the window and asks how
long the next one must wait.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    count: int
    per: float


def wait(sent: list[float], now: float, limit: RateLimit, ahead: int = 0) -> float:
    """Seconds until one more send fits (0: now), given the times of the sends so far and
    how many older notifications are waiting their turn (they go first: a receiver gets a
    task's changes in order)."""
    # A send stamped a little after ``now`` (another notifier's clock) still counts.
    recent = sorted([t for t in sent if t > now - limit.per] + [now] * ahead)
    if len(recent) < limit.count:
        return 0.0
    # The send that frees a place is the one ``count`` back from the newest.
    return max(recent[-limit.count] + limit.per - now, 0.0)


def describe(limit: RateLimit) -> str:
    return f"{limit.count} per {limit.per:g}s"
