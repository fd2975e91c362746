"""The live log lines of runs, as agents publish them on core NATS, for the request pages.

A run takes milliseconds: a page opened after "check now" would see nothing if it only
followed the subject from then on. So the web follows a request group's lines for a while
from the moment someone asks for it (or opens one of its requests' pages) and keeps the last
lines of the last runs it saw, bounded, in memory; a page gets those, then what follows.
Nothing is stored anywhere else, and agents never wait for a listener.

Agents tell only the runs of the groups someone follows (``services/agent/watched.py``): the
web announces each group it begins to follow (on ``subjects.WATCHING``, before a "check now"
goes out), again when its follow is extended well past what it said, everything it follows
every :data:`REFRESH` seconds, and answers an agent that starts and asks (in that agent's
inbox only: ``subjects.is_watching_reply``).

What agents send is checked, not believed (``control.admitted_line``): a line is kept only
within the bounds of a line and when it names the run and the agent its subject names (what
the agent's permissions let it publish); the lines kept weigh :data:`KEEP_BYTES` at most. What
is refused is counted (``refused``) and logged, at most every :data:`TELL_REFUSALS_EVERY`
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from events import control, subjects
from runtime.logs import Log

log = Log("tocsin.web.runlogs")

#: Runs whose lines are kept, and how long a group's lines are followed after the last ask.
KEEP_RUNS = 500
FOLLOW_FOR = 300.0
#: Bytes the lines kept may weigh in all (as published; at most ``control.MAX_LINE_BYTES``
#: each): the oldest runs go first. Lines of a hundred bytes, nine a run, fill KEEP_RUNS first.
KEEP_BYTES = 4 * 2**20
#: What is refused is logged at most this often (an agent sending thousands would fill the log).
TELL_REFUSALS_EVERY = 60.0
#: Every so often, everything followed is announced again (an agent that missed an
#: announcement catches up); a follow extended past what the agents were told by more than
#: this is announced at once.
REFRESH = 60.0


class RunLogs:
    def __init__(self) -> None:
        self.lines: OrderedDict[str, list[control.LogLine]] = OrderedDict()
        self.weights: dict[str, int] = {}  # request → bytes of its lines kept
        self.weight = 0  # of every line kept
        #: Lines and questions refused since the start, and when that was last logged.
        self.refused = 0
        self._refusals_told = -TELL_REFUSALS_EVERY
        self.listeners: dict[str, set[asyncio.Queue[control.LogLine]]] = {}
        self.followed: dict[str, tuple[Any, float]] = {}  # group → (subscription, until)
        self.announced: dict[str, float] = {}  # group → until, as the agents were told
        self._asked: Any = None  # the subscription to agents' questions, with the first follow
        self._refresher: asyncio.Task[None] | None = None
        self._on: Any = None  # the connection they are on

    async def follow(self, nc: Any, group: str, seconds: float = FOLLOW_FOR) -> None:
        """Keep the lines of ``group``'s runs from now on, for ``seconds`` (extended by each
        call), and have the agents tell them."""
        self._drop_expired()
        await self.start(nc)
        now = time.monotonic()
        current = self.followed.get(group)
        if current is not None:
            until = max(current[1], now + seconds)
            self.followed[group] = (current[0], until)
        else:
            sub = await nc.subscribe(subjects.live_for_group(group), cb=self._received)
            until = now + seconds
            self.followed[group] = (sub, until)
        if until - self.announced.get(group, 0.0) > REFRESH:
            await self._announce(nc, {group: until})

    async def start(self, nc: Any) -> None:
        """Answer the agents that ask and tell them every :data:`REFRESH` seconds what is
        followed, nothing included: an agent that never heard a watcher tells every run (a web
        without the permissions to say, or none at all), one that did tells only these."""
        if self._on is nc:
            return
        # A new connection (the web's was closed for good and opened again): answer there.
        if self._refresher is not None:
            self._refresher.cancel()
        if self._asked is not None:
            await _unsubscribe(self._asked)
        self._on = nc
        self._asked = await nc.subscribe(subjects.WATCHING_ASK, cb=self._answer)
        self._refresher = asyncio.get_running_loop().create_task(self._refresh(nc))

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for group, (sub, until) in list(self.followed.items()):
            if until < now:
                del self.followed[group]
                self.announced.pop(group, None)
                asyncio.get_running_loop().create_task(_unsubscribe(sub))

    def _watching(self, untils: dict[str, float]) -> bytes:
        now = time.monotonic()
        return control.encode(control.Watching({g: until - now for g, until in untils.items()}))

    async def _announce(self, nc: Any, untils: dict[str, float]) -> None:
        try:
            await nc.publish(subjects.WATCHING, self._watching(untils))
        except Exception as exc:  # the next refresh tells it again
            log.warning("could not tell the agents which runs are followed", error=str(exc))
            return
        self.announced.update(untils)

    async def _answer(self, msg: Any) -> None:
        """An agent starting asks what is followed: everything, in its inbox. Never on another
        reply subject: one of the log would keep the answer as an event (and the web's
        permissions refuse any but agents' ``<inbox>.watching``)."""
        if not subjects.is_watching_reply(msg.reply or ""):
            self._refuse(
                "question not answered: its reply subject is not <inbox>.watching"
                " (an agent older than this web, or a forgery)",
                reply=msg.reply,
            )
            return
        self._drop_expired()
        with contextlib.suppress(Exception):  # it hears the next refresh
            await msg.respond(self._watching({g: u for g, (_, u) in self.followed.items()}))

    async def _refresh(self, nc: Any) -> None:
        while True:  # at once first: agents that started before this web hear it
            self._drop_expired()
            await self._announce(nc, {g: until for g, (_, until) in self.followed.items()})
            await asyncio.sleep(REFRESH)

    async def _received(self, msg: Any) -> None:
        try:
            line = control.admitted_line(msg.subject, msg.data)
        except control.LineRefused as exc:
            self._refuse("run-log line refused", subject=msg.subject, error=str(exc))
            return
        self._keep(line, len(msg.data))
        for q in self.listeners.get(line.request, ()):
            with contextlib.suppress(asyncio.QueueFull):  # a stuck page loses lines, not memory
                q.put_nowait(line)

    def _keep(self, line: control.LogLine, size: int) -> None:
        kept = self.lines.setdefault(line.request, [])
        self.lines.move_to_end(line.request)
        if len(kept) < control.MAX_LINES:
            kept.append(line)
            self.weights[line.request] = self.weights.get(line.request, 0) + size
            self.weight += size
        while len(self.lines) > KEEP_RUNS or self.weight > KEEP_BYTES:
            gone, _ = self.lines.popitem(last=False)
            self.weight -= self.weights.pop(gone, 0)

    def _refuse(self, what: str, **fields: Any) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._refusals_told >= TELL_REFUSALS_EVERY:
            self._refusals_told = now
            log.warning(what, refused_so_far=self.refused, **fields)

    async def stream(self, nc: Any, request: str) -> AsyncIterator[control.LogLine | None]:
        """The run's lines seen so far, then each new one; None every 15 s (a keep-alive).
        ``request`` must be a request's id (ValueError otherwise): its group is a subject's."""
        group = subjects.request_group(request)
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
        if self._refresher is not None:
            self._refresher.cancel()
        if self._asked is not None:
            await _unsubscribe(self._asked)
        for sub, _ in self.followed.values():
            await _unsubscribe(sub)
        self.followed.clear()


async def _unsubscribe(sub: Any) -> None:
    with contextlib.suppress(Exception):
        await sub.unsubscribe()
