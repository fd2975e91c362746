"""Dispatching: due groups become check requests; a request unanswered for too long becomes
an ``unknown`` verdict."""

from __future__ import annotations

import asyncio
import contextlib
import time

from nats.js import JetStreamContext

from checks import request
from checks.judge import no_result
from events import codec, subjects
from runtime import bus
from services.scheduler.state import PUBLISH_ACK_WAIT, SchedulerState, log


class Dispatching(SchedulerState):
    async def _dispatch(self, js: JetStreamContext) -> None:
        while not self.stopping.is_set():
            now = time.time()
            self._expire_overdue(js, now)
            due = self.plan.pop_due(now)
            if due:
                await self._request(js, due)
                continue
            nxt = self.plan.next_due()
            wait = 1.0 if nxt is None else max(0.0, min(nxt - now, 1.0))
            self.wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)

    async def _request(self, js: JetStreamContext, due: list[tuple[str, float]]) -> None:
        pending = []
        now = time.time()
        for gid, when in due:
            tasks = self.groups.get(gid)
            if not tasks:
                continue
            for location in tasks[0].locations:
                rid = request.scheduled_id(gid, location, when)
                event = request.build(tasks, location, rid, now, when)
                # Headers and bodies may hold secrets: only the location's agents can read them.
                event = self.sealer.seal(event)
                subject, data = subjects.requested(location, gid), codec.encode(event)
                self.requests[(location, gid)] = rid
                msg_id = request.message_id(rid)
                pending.append(
                    (
                        gid,
                        when,
                        subject,
                        data,
                        msg_id,
                        await self._publish_async(js, subject, data, msg_id),
                    )
                )
        for gid, when, subject, data, msg_id, fut in pending:
            try:
                await self._acked(fut)
            except Exception as exc:
                # The same request again (same message id) until JetStream has it: it may have
                # landed with its ack lost, and a new request id would then dispatch it twice.
                log.warning(
                    "request not acknowledged; publishing it again",
                    group=gid,
                    error=str(exc) or type(exc).__name__,
                )
                await bus.publish_until_acked(js, subject, data, msg_id, ack_wait=PUBLISH_ACK_WAIT)
            self.in_flight[gid] = when

    def _expire_overdue(self, js: JetStreamContext, now: float) -> None:
        """A request with no result for twice its frequency (twice its timeout when that is
        longer): the group becomes unknown, saying which locations did not answer. Not
        bounded by the redeliveries: a location without any agent never redelivers."""
        for gid, when in list(self.in_flight.items()):
            tasks = self.groups.get(gid)
            if tasks is None:
                self.in_flight.pop(gid)
                continue
            limit = 2 * max(min(t.frequency for t in tasks), min(t.timeout for t in tasks))
            if now - when > limit:
                self.in_flight.pop(gid)
                where = ", ".join(tasks[0].locations)
                reason = f"no result for {now - when:.0f}s: no agent of {where} answered"
                verdict = no_result(tasks, self.task_states, now, reason)
                msg_id = f"judged.noresult.{gid}.{int(when * 1000)}"
                task = asyncio.create_task(self._publish_judged(js, verdict, msg_id))
                self._background.add(task)  # keep a reference until it is done
                task.add_done_callback(self._background.discard)
