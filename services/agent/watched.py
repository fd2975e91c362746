"""The request groups whose runs someone watches live, so that the agent tells only those.

A run's log (about nine lines on core NATS, with aiohttp tracing each step) cost a tenth of
the agent's CPU, and nobody reads the lines of a run unless a request page of its group is
open or was asked for ("check now"): the web then follows the group for a while
(``services/web/runlogs.py``) and says so on ``subjects.WATCHING`` (what it follows, each group
for so many seconds more). An agent keeps what it hears, and when it starts asks the watchers
already there (``subjects.WATCHING_ASK``; a watcher answers with everything it follows, on
``<inbox>.watching``: the one subject of the agent's inbox a watcher may publish on, not where
its pulled requests arrive): a run of a group followed before the agent started is told too.
The web repeats what it follows every so often, so an agent that missed an announcement (a
reconnection) catches up. Until an agent has heard a watcher at all (no web runs, or one
whose NATS permissions predate watching), it tells every run, as agents did before.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from nats.aio.client import NO_RESPONDERS_STATUS
from nats.errors import TimeoutError as NatsTimeout

from events import control, subjects
from runtime.logs import Log

log = Log("tocsin.agent.watched")

#: How long an agent starting waits for a watcher's answer (none at all: nobody watches; a
#: slow one, on a loaded machine: a run taken meanwhile would go untold).
ASK_TIMEOUT = 10.0


class Watched:
    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # group → monotonic time its watch ends
        #: Until a watcher speaks (none runs, or a web whose permissions predate watching may
        #: not say), every run is told, as before watchers existed: `nats sub` sees them all.
        self.heard_any = False

    def __contains__(self, group: str) -> bool:
        return not self.heard_any or self._until.get(group, 0.0) > time.monotonic()

    def heard(self, data: bytes) -> None:
        """One watcher's announcement; several watchers of a group: the longest watch holds."""
        try:
            groups = control.decode_watching(data).groups
        except control.DecodeError as exc:
            log.warning("not a watch announcement", error=str(exc))
            return
        self.heard_any = True
        now = time.monotonic()
        for group, seconds in groups.items():
            until = now + seconds
            if until > self._until.get(group, 0.0):
                self._until[group] = until
        for group in [g for g, until in self._until.items() if until <= now]:
            del self._until[group]

    async def follow(self, nc: Any) -> None:
        """Hear the announcements from now on, then ask the watchers already there."""

        async def announced(msg: Any) -> None:
            self.heard(msg.data)

        await nc.subscribe(subjects.WATCHING, cb=announced)
        reply = subjects.watching_reply(nc.new_inbox())
        answers = await nc.subscribe(reply, max_msgs=1)
        try:
            await nc.publish(subjects.WATCHING_ASK, b"", reply=reply)
            answer = await answers.next_msg(timeout=ASK_TIMEOUT)
        except (NatsTimeout, TimeoutError):
            log.warning("no watcher answered which runs it follows; hearing them from now on")
            return
        except Exception as exc:  # a link down at this moment: the next refresh tells it all
            log.warning("could not ask which runs are followed", error=str(exc))
            return
        finally:
            with contextlib.suppress(Exception):  # gone already after its one message
                await answers.unsubscribe()
        if answer.headers and answer.headers.get("Status") == NO_RESPONDERS_STATUS:
            return  # no watcher yet: every run is told until one speaks
        self.heard(answer.data)
