"""Taking over: each group's schedule, its request in flight and each task's severity, read
from the log when a term as leader starts (a start, a lease lost while NATS restarted)."""

from __future__ import annotations

import time

from nats.js import JetStreamContext

from checks import request
from checks.judge import apply
from events import codec, subjects
from events.types import CheckRequested, TaskDef, TaskJudged
from runtime import bus
from services.scheduler.judging import Judging
from services.scheduler.plan import spread

#: Lease times a group may be overdue from a shard changing holder: the lease expiring (a
#: holder killed), a quarter of it for a replica to notice, the log read. Such a group runs at
#: once, keeping its schedule; one overdue longer was left by a scheduler stopped or cut off.
HANDOFF = 2.0


class Restoring(Judging):
    async def _restore(self, js: JetStreamContext) -> None:
        """Pick up each group's schedule and each task's severity from the last judgements,
        and the requests the last holder sent that are not judged yet."""
        now = time.time()
        judged: set[str] = set()
        async for msg in bus.replay(js, subjects.JUDGED_ALL, last_per_subject=True):
            try:
                ev = codec.decode(msg.data, msg.subject)
            except codec.DecodeError:
                continue
            if not isinstance(ev, TaskJudged) or ev.group not in self.groups:
                continue
            judged.add(ev.group)
            apply(self.task_states, ev)
            self.by_location.remember(ev)
            gs = self.group_states[ev.group]
            gs.last_completion, gs.recheck = ev.completion, ev.recheck
            tasks = self.groups[ev.group]
            due = ev.next_run
            if due < now and await self._requested(js, tasks[0], due):
                # The last holder sent it (a stop, or a shard moving): wait for its answer
                # instead of sending the group again at once.
                self._outstanding(ev.group, due, now)
                continue
            if due < now - HANDOFF * self.opts.lease_ttl:
                # Overdue after an outage, with every other group: spread, not all at once.
                due = spread(ev.group, min(min(t.frequency for t in tasks), 60.0), now)
            self.plan.set(ev.group, due)
        await self._restore_unjudged(js, self.groups.keys() - judged, now)
        self.wake.set()

    async def _restore_unjudged(self, js: JetStreamContext, groups: set[str], now: float) -> None:
        """A group never judged may have a request in the log already: the last holder sent it,
        then lost the lease (NATS restarted) before its answer came. It is outstanding: sent
        again at once, its answer, coming after the restart, answered a request no longer in
        force and was never judged. (Read only when such groups exist: none on a log that
        has no request yet, as at a first start.)"""
        if not groups:
            return
        async for msg in bus.replay(js, subjects.REQUESTED_ALL, last_per_subject=True):
            # ``tocsin.check.requested.<location>.<group>``; "check now" ones have a 6th token.
            tokens = msg.subject.split(".")
            if len(tokens) != 5 or tokens[4] not in groups:
                continue
            location, group = tokens[3], tokens[4]
            if location != self.groups[group][0].locations[0]:
                continue
            try:
                req = codec.decode(msg.data, msg.subject)
            except codec.DecodeError:
                continue  # poison: no request is known, the group is sent as planned
            if isinstance(req, CheckRequested) and req.requested_by is None:
                self.requests[(location, group)] = req.request
                self.unverified.add((location, group))
                self.plan.remove(group)
                self._outstanding(group, req.due, now)

    def _outstanding(self, group: str, due: float, now: float) -> None:
        """``group``'s request for ``due``, sent by the last holder, outstanding from ``now``:
        its agents get their whole time to answer from when this term reads answers again. A
        deadline already past gave the request up at the first tick, before the answer waiting
        in the log was read: unknown ("no agent answered"), then judged again on it."""
        limit = request.give_up_after(self.groups[group])
        self.outstanding.add(group, due, limit + max(0.0, now - due))

    async def _requested(self, js: JetStreamContext, task: TaskDef, due: float) -> bool:
        """Whether the log holds the request of ``task``'s group for ``due`` already."""
        location = task.locations[0]
        latest = await self._latest_request(js, location, task.group)
        return latest == request.scheduled_id(task.group, location, due)
