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


def wait(sent: list[float], now: float, limit: RateLimit) -> float:
    """Seconds until one more send fits (0: now), given the times of the sends so far."""
    recent = sorted(t for t in sent if now - limit.per < t <= now)
    if len(recent) < limit.count:
        return 0.0
    # The send that frees a place is the one ``count`` back from the newest.
    return recent[-limit.count] + limit.per - now


def describe(limit: RateLimit) -> str:
    return f"{limit.count} per {limit.per:g}s"
