"""Dispatching: due groups become check requests; a request unanswered for too long becomes
an ``unknown`` verdict."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

from nats.js import JetStreamContext

from checks import request
from checks.judge import no_result
from events import codec, lenient, subjects
from events.fields import EARLIEST, LATEST
from events.types import TaskDef
from runtime.pubacks import Publisher
from runtime.stalls import Stalls
from services.scheduler.leader import Lease
from services.scheduler.state import PUBLISH_ACK_WAIT, SchedulerState, log

#: Seconds between two dispatch rounds at most: the groups due within a tick go out together,
#: in one batch of publishes and one wait for their acks, instead of one wake-up per group
#: (833 a second at 100,000 tasks a minute). A request leaves at most this late. A round
#: costs about as much for one group as for a hundred (its wake-ups, the batch's wait, the
#: flush): 0.2 s, not 0.05, is a quarter of the rounds at full rate (bench/README.md, tenth
#: sitting).
TICK = 0.2
#: Requests of a task list are taken as admitted once one of this size at most was: their ids
#: and times differ by a few bytes, far from ``codec.MAX_EVENT_BYTES``.
ADMITTED_BYTES = codec.MAX_EVENT_BYTES - 1024
#: Seconds a turn may take (its wait of up to 1 s, a batch published) before this process
#: counts as having stalled (runtime/stalls.py).
STALL = 3.0


class Dispatching(SchedulerState):
    async def _dispatch(self, js: JetStreamContext, publisher: Publisher, lease: Lease) -> None:
        stalls = Stalls(STALL)
        while not self.stopping.is_set():
            started = time.time()
            if gap := stalls.gap():
                # Not running, it read no answer: those sent meanwhile are judged next.
                self.outstanding.postpone(gap)
            if not lease.holds():
                # Paused or cut off past what the last renewal proves: another replica may hold
                # these groups now and have sent their runs. Nothing goes out until a renewal
                # confirms the lease, or its loss ends the term.
                await asyncio.sleep(TICK)
                continue
            self._expire_overdue(js, started)
            due = self.plan.pop_due(started)
            if due:
                await self._request(js, publisher, due)
            await asyncio.sleep(max(0.0, started + TICK - time.time()))
            now = time.time()
            nxt = self.plan.next_due()
            wait = 1.0 if nxt is None else max(0.0, min(nxt - now, 1.0))
            if wait > 0:
                self.wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)

    async def _request(
        self, js: JetStreamContext, publisher: Publisher, due: list[tuple[str, float]]
    ) -> None:
        batch = publisher.batch()
        outstanding = []
        now = time.time()
        for gid, when in due:
            tasks = self.groups.get(gid)
            if not tasks:
                continue
            refused = None
            gs = self.group_states[gid]
            # An unsealed request of a task list admitted before differs from that one only in
            # its id (tokens and a number), ``at`` and ``due``: with both in bounds, the
            # contract admits it too, and it is not decoded again (a third of a request's CPU
            # at 100,000 tasks). Secrets change with the configuration, and so does the list.
            admitted = (
                gs.admitted is tasks and EARLIEST <= min(now, when) <= max(now, when) <= LATEST
            )
            alike = True  # every location's request unsealed and well within the size bound
            for location in tasks[0].locations:
                rid = request.scheduled_id(gid, location, when)
                event = request.build(tasks, location, rid, now, when)
                # Headers and bodies may hold secrets: only the location's agents can read them.
                event = self.sealer.seal(event)
                subject = subjects.requested(location, gid)
                if admitted and event.sealed is None:
                    data = codec.encode(event)
                else:
                    try:
                        # ``config check`` refuses a request group too large for an event; what
                        # is sealed grows by a third, beyond what it can know: said, never sent.
                        data = lenient.encode_admitted(event, subject)
                    except codec.DecodeError as exc:
                        refused = f"the request cannot be sent to the agents: {exc}"
                        continue
                    alike = alike and event.sealed is None and len(data) <= ADMITTED_BYTES
                key = (location, gid)
                self.answered.discard(self.requests.get(key))
                self.unverified.discard(key)
                self.requests[key] = rid  # new: not completed yet
                await batch.publish(subject, data, request.message_id(rid))
            if refused is not None:
                self._refused(js, tasks, refused, now)
            else:
                if alike:
                    gs.admitted = tasks
                outstanding.append((gid, when, request.give_up_after(tasks)))
        await batch.acked(js, PUBLISH_ACK_WAIT)
        for gid, when, limit in outstanding:
            self.outstanding.add(gid, when, limit)

    def _refused(self, js: JetStreamContext, tasks: list[TaskDef], reason: str, now: float) -> None:
        """A group whose request the contract refuses is unknown, saying why, and tried again
        at its next run (the keys of its location, or the configuration, may change)."""
        log.error("request refused by the event contract", group=tasks[0].group, error=reason)
        next_run = now + min(t.frequency for t in tasks)
        verdict = no_result(tasks, self.task_states, now, reason[:2000], next_run)
        msg_id = f"judged.refused.{tasks[0].group}.{int(now * 1000)}"
        self._in_background(self._publish_judged(js, verdict, msg_id))

    def _expire_overdue(self, js: JetStreamContext, now: float) -> None:
        """A request with no result for twice its frequency (twice its timeout when that is
        longer): the group becomes unknown, saying which locations did not answer. Not
        bounded by the redeliveries: a location without any agent never redelivers."""
        for gid, when in self.outstanding.expired(now):
            tasks = self.groups.get(gid)
            if tasks is None:
                continue
            where = ", ".join(tasks[0].locations)
            reason = f"no result for {now - when:.0f}s: no agent of {where} answered"
            verdict = no_result(tasks, self.task_states, now, reason)
            msg_id = f"judged.noresult.{gid}.{int(when * 1000)}"
            self._in_background(self._publish_judged(js, verdict, msg_id))

    def _in_background(self, publishing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(publishing)
        self._background.add(task)  # keep a reference until it is done
        task.add_done_callback(self._background.discard)
