"""Heartbeats and host figures: the events whose time of reception the read models keep.

How long an agent or a host has been silent counts from when the log received its last
heartbeat or figures (the stream's store time, the same on a rebuild): the time written in
them is the agent's clock, which may run fast or slow. Which are the latest is the time they
were taken, but never later than when the log received them: figures replayed or delivered
late do not replace newer ones, and one dated an hour ahead does not hide the next ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events.types import AgentHeartbeat, HostObserved


@dataclass(frozen=True, slots=True)
class Heard:
    """A heartbeat or a host's figures, as the projector's decoding hands them: with when the
    log stored them."""

    event: AgentHeartbeat | HostObserved
    received: float

    @property
    def at(self) -> float:
        return self.event.at

    @property
    def taken(self) -> float:
        return min(self.event.at, self.received)


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def taken(row: tuple[Any, ...], at: int, received: int) -> datetime:
    """When the event of a read-model row was taken (``Heard.taken``): ``at`` and ``received``
    are the places of its two times in the row."""
    return min(row[at], row[received])


#: The places of ``last_seen`` and ``received_at`` in an agent's row.
AGENT_TIMES = (7, 9)


def agent_row(ev: AgentHeartbeat, received: float) -> tuple[Any, ...]:
    return (
        ev.agent,
        ev.location,
        ev.version,
        ev.concurrency,
        ev.in_flight,
        ev.completed,
        ts(ev.started),
        ts(ev.at),
        ev.stopping,
        ts(received),
    )
