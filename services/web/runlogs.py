"""The live log lines of runs, as agents publish them on core NATS, for the request pages.

A run takes milliseconds: a page opened after "check now" would see nothing if it only
followed the subject from then on. So the web follows a request group's lines for a while
from the moment someone asks for it (or opens one of its requests' pages) and keeps the last
lines of the last runs it saw, bounded, in memory; a page gets those, then what follows.
Nothing is stored anywhere else, and agents never wait for a listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from events import control, subjects
from runtime.logs import Log

log = Log("tocsin.web.runlogs")

#: Runs whose lines are kept, and how long a group's lines are followed after the last ask.
KEEP_RUNS = 500
FOLLOW_FOR = 300.0


class RunLogs:
    def __init__(self) -> None:
        self.lines: OrderedDict[str, list[control.LogLine]] = OrderedDict()
        self.listeners: dict[str, set[asyncio.Queue[control.LogLine]]] = {}
        self.followed: dict[str, tuple[Any, float]] = {}  # group → (subscription, until)

    async def follow(self, nc: Any, group: str, seconds: float = FOLLOW_FOR) -> None:
        """Keep the lines of ``group``'s runs from now on, for ``seconds`` (extended by each
        call)."""
        self._drop_expired()
        until = time.monotonic() + seconds
        current = self.followed.get(group)
        if current is not None:
            self.followed[group] = (current[0], max(current[1], until))
            return
        sub = await nc.subscribe(subjects.live_for_group(group), cb=self._received)
        self.followed[group] = (sub, until)

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for group, (sub, until) in list(self.followed.items()):
            if until < now:
                del self.followed[group]
                asyncio.get_running_loop().create_task(_unsubscribe(sub))

    async def _received(self, msg: Any) -> None:
        try:
            line = control.decode_line(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("not a log line", subject=msg.subject, error=str(exc))
            return
        kept = self.lines.setdefault(line.request, [])
        self.lines.move_to_end(line.request)
        while len(self.lines) > KEEP_RUNS:
            self.lines.popitem(last=False)
        if len(kept) < control.MAX_LINES:
            kept.append(line)
        for q in self.listeners.get(line.request, ()):
            with contextlib.suppress(asyncio.QueueFull):  # a stuck page loses lines, not memory
                q.put_nowait(line)

    async def stream(self, nc: Any, request: str) -> AsyncIterator[control.LogLine | None]:
        """The run's lines seen so far, then each new one; None every 15 s (a keep-alive)."""
        group = request.split(".", 1)[0]
        await self.follow(nc, group)
        q: asyncio.Queue[control.LogLine] = asyncio.Queue(maxsize=control.MAX_LINES * 4)
        self.listeners.setdefault(request, set()).add(q)
        try:
            seen: set[tuple[str, int]] = set()
            for line in list(self.lines.get(request, ())):
                seen.add((line.agent, line.n))
                yield line
            while True:
                try:
                    line = await asyncio.wait_for(q.get(), 15)
                except TimeoutError:
                    await self.follow(nc, group)  # an open page keeps its group followed
                    yield None
                    continue
                if (line.agent, line.n) not in seen:
                    seen.add((line.agent, line.n))
                    yield line
        finally:
            waiting = self.listeners.get(request, set())
            waiting.discard(q)
            if not waiting:
                self.listeners.pop(request, None)

    async def close(self) -> None:
        for sub, _ in self.followed.values():
            await _unsubscribe(sub)
        self.followed.clear()


async def _unsubscribe(sub: Any) -> None:
    with contextlib.suppress(Exception):
        await sub.unsubscribe()
