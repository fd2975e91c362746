"""The no-agent alert: raised once per episode when no agent heartbeat arrived for
``recurring_tasks.time_without_agent``, lowered once when one arrives again.

The episode is a flag in PostgreSQL, so several notifiers raise it once between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import asyncpg

from runtime.logs import Log
from services.notifier import store
from services.notifier.decide import decide_no_agent
from services.notifier.message import Message
from services.notifier.routing import channels_for
from services.notifier.settings import NotifySettings

log = Log("tocsin.notifier")

Enqueue = Callable[[asyncpg.Connection, str, str, Message], Awaitable[None]]


class AgentWatch:
    def __init__(
        self,
        settings: Callable[[], NotifySettings],
        enqueue: Enqueue,
        wake_sender: asyncio.Event,
        stopping: asyncio.Event,
        every: float,
    ) -> None:
        self.settings, self.enqueue = settings, enqueue
        self.wake_sender, self.stopping, self.every = wake_sender, stopping, every
        self.last_agent_seen: float | None = None
        self.started = time.time()

    def seen(self, received: float) -> None:
        """A heartbeat received at ``received`` (this side's clock, never the agent's)."""
        self.last_agent_seen = max(self.last_agent_seen or 0.0, received)

    async def run(self, pool: asyncpg.Pool) -> None:
        while not self.stopping.is_set():
            targets = channels_for(self.settings(), None, "no_agent")
            if targets:
                try:
                    await self._check(pool, [t.channel for t in targets])
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("no-agent check failed", error=str(exc))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.every)

    async def _check(self, pool: asyncpg.Pool, targets: list[str]) -> None:
        now = time.time()
        s = self.settings()
        async with pool.acquire() as conn:
            alerted = await store.get_flag(conn, "no_agent")
            what = decide_no_agent(
                self.last_agent_seen, self.started, now, s.time_without_agent, alerted is not None
            )
            if what is None:
                return
            async with conn.transaction():
                if what == "no_agent":
                    since = self.last_agent_seen or self.started
                    if not await store.set_flag(conn, "no_agent", {"since": since}):
                        return  # another notifier raised it
                    severity, previous = "no_agent", "ok"
                    reason = (
                        f"no agent heartbeat for {now - since:.0f}s (limit "
                        f"{s.time_without_agent:.0f}s)"
                    )
                else:
                    flag = await store.clear_flag(conn, "no_agent")
                    if not isinstance(flag, dict):
                        return
                    since = float(flag["since"])
                    severity, previous = "ok", "no_agent"
                    reason = f"an agent reported again after {now - since:.0f}s"
                log.warning(reason)
                m = Message(
                    key="",
                    kind=what,
                    severity=severity,
                    previous=previous,
                    at=now,
                    reason=reason,
                    web_url=s.web_url,
                )
                for channel in targets:
                    await self.enqueue(conn, f"{what}:{since:.3f}:{channel}", channel, m)
        self.wake_sender.set()
