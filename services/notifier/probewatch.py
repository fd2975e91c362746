"""The notifier's side of "blame the probe": from the per-location severities the judgements
carry, the same decision as the scheduler's (checks/degraded.py); one alert when a location
becomes degraded, naming it and why, one when it is healthy again, to the ``no_agent``
channels (alerts about the monitoring itself). The episode is a flag in PostgreSQL, so
several notifiers, or a restarted one, tell it once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

import asyncpg

from checks import degraded as probes
from events.types import TaskJudged
from runtime.logs import Log
from services.notifier import store
from services.notifier.message import Message
from services.notifier.routing import channels_for
from services.notifier.settings import NotifySettings

log = Log("tocsin.notifier")

Enqueue = Callable[[asyncpg.Connection, str, str, Message], Awaitable[None]]
FLAG = "degraded:"


class ProbeWatch:
    def __init__(self, settings: Callable[[], NotifySettings], enqueue: Enqueue) -> None:
        self.settings, self.enqueue = settings, enqueue
        self.seen: dict[str, dict[str, str]] = defaultdict(dict)

    async def observe(self, conn: asyncpg.Connection, ev: TaskJudged, seq: int) -> bool:
        """Fold one verdict in; True when a notification was queued."""
        touched = False
        for j in ev.judgements:
            if j.locations:
                self.seen[j.task].update(j.locations)
                touched = True
        if not touched:
            return False
        s = self.settings()
        degraded = {str(name).removeprefix(FLAG) for name in await store.flags(conn, FLAG)}
        queued = False
        for a in probes.assess(self.seen, s.degraded, degraded).values():
            if a.degraded == (a.location in degraded):
                continue
            flag = FLAG + a.location
            if a.degraded:
                if not await store.set_flag(conn, flag, {"since": ev.at, "seq": seq}):
                    continue  # another notifier raised it
                kind, severity, previous, episode = "location_degraded", "no_agent", "ok", seq
            else:
                raised = await store.clear_flag(conn, flag)
                if not isinstance(raised, dict):
                    continue
                kind, severity, previous, episode = (
                    "location_healthy",
                    "ok",
                    "no_agent",
                    raised["seq"],
                )
            log.warning(f"location {a.location} {kind.split('_')[1]}", why=a.reason)
            m = Message(
                key="",
                kind=kind,
                severity=severity,
                previous=previous,
                at=ev.at,
                reason=a.reason,
                group=a.location,
                source_seq=seq,
                web_url=s.web_url,
            )
            for t in channels_for(s, None, "no_agent"):
                await self.enqueue(conn, f"{kind}:{a.location}:{episode}:{t.channel}", t.channel, m)
                queued = True
        return queued
