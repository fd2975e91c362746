"""Judging: completions from the log become verdicts (``task.judged``)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from checks import request
from checks.degraded import thresholds
from checks.judge import apply, judge
from checks.quorum import configured
from events import codec, lenient, streams, subjects
from events.types import CheckCompleted, CheckRequested, TaskJudged
from runtime import bus
from runtime.framepull import Delivered, Pull
from runtime.pubacks import Batch, Publisher
from runtime.pull import stream_seq
from services.scheduler.plan import shard_of
from services.scheduler.state import PUBLISH_ACK_WAIT, SchedulerState, log

#: Completions fetched at once at most.
BATCH = 500
#: One fetch of completions per this many seconds while they come a few at a time (at
#: 100,000 tasks a minute, 833 a second): ``bus.gathered_until``. A verdict is at most this
#: late; a backlog is fetched without a pause. Each fetch costs a pull request, a batch of
#: verdicts awaited together and an ack whatever its size: 0.2 s, not 0.05, is a quarter of
#: them at full rate.
GATHER = 0.2


class Judging(SchedulerState):
    async def _judge_completions(
        self, nc: Client, js: JetStreamContext, publisher: Publisher
    ) -> None:
        # The projector's pull: each completion's frame cut out of the connection's reads,
        # without nats-py's parse of its headers, a ``Msg`` and a task's turn.
        pull = await Pull(nc, streams.EVENTS, streams.completions_durable(self.shard)).start()
        puller = bus.Puller(pull, "completions", gather=GATHER)
        try:
            while not self.stopping.is_set():
                msgs = await puller.fetch(BATCH)
                if msgs:
                    await self._judge_batch(js, publisher, msgs)
        finally:
            # A new term as leader subscribes again: no subscription left behind.
            with contextlib.suppress(Exception):
                await pull.close()

    async def _judge_batch(
        self, js: JetStreamContext, publisher: Publisher, msgs: list[Delivered]
    ) -> None:
        assert self.config is not None
        batch = publisher.batch()
        for msg in msgs:
            # Every shard's consumer sees every completion: its subject ends with the group,
            # so another shard's is passed over before decoding (and recorded, if it is
            # poison, by that shard alone).
            shards = self.opts.shards
            if shards > 1 and shard_of(msg.subject.rsplit(".", 1)[-1], shards) != self.shard:
                continue
            seq = stream_seq(msg)
            try:
                # What codec.decode answers, cheaper: the scheduler compares no completion.
                ev = lenient.decode(msg.data, msg.subject)
                if not isinstance(ev, CheckCompleted):
                    raise codec.DecodeError(f"{msg.subject}: not a check.completed event")
                verdict = await self._verdict(js, ev, seq)
            except Exception as exc:  # whatever a message holds, it is recorded, never fatal
                reason = str(exc)
                if not isinstance(exc, codec.DecodeError):
                    reason = f"{msg.subject}: could not judge: {type(exc).__name__}: {exc}"
                await self._dead_letter(batch, msg, seq, reason)
                continue
            if verdict is None:
                continue
            gs = self.group_states[ev.group]
            if request.is_on_demand(ev.request):
                # "Check now": judged like any completion, but the schedule stays as it is.
                due = self.plan.due_of(ev.group) or self.in_flight.get(ev.group, verdict.at)
                verdict = msgspec.structs.replace(verdict, next_run=due, recheck=gs.recheck)
            subject = subjects.judged(ev.group)
            tasks = self.groups.get(ev.group)
            # Its group and tasks those of a request admitted (dispatch's ``gs.admitted``):
            # their tokens and keys are; what the agent's answer made of it is checked.
            keys_admitted = (
                tasks is not None
                and gs.admitted is tasks
                and verdict.group == tasks[0].group
                and [j.task for j in verdict.judgements] == [t.id for t in tasks]
            )
            try:
                # An agent's details make the reasons: a verdict the contract refuses would be
                # a dead letter for every reader, and the task judged by none of them.
                data = lenient.encode_judged(verdict, subject, keys_admitted)
            except codec.DecodeError as exc:
                await self._dead_letter(batch, msg, seq, f"{msg.subject}: its verdict: {exc}")
                continue
            if not request.is_on_demand(ev.request):
                self.in_flight.pop(ev.group, None)
                self.plan.set(ev.group, verdict.next_run)
            apply(self.task_states, verdict)
            gs.last_completion, gs.recheck = seq, verdict.recheck
            await batch.publish(subject, data, f"judged.{seq}")
        # Ack (all up to the last) only once every verdict is in the log. The verdicts are
        # applied in memory already (a redelivery would be skipped as judged), so one that
        # failed to land (NATS away) is published again until it does, never dropped.
        await batch.acked(js, PUBLISH_ACK_WAIT)
        self.wake.set()
        # A lost ack (NATS away) means a redelivery, skipped above as judged already.
        with contextlib.suppress(Exception):
            await msgs[-1].ack()

    async def _dead_letter(self, batch: Batch, msg: Delivered, seq: int, reason: str) -> None:
        subject, data, headers = bus.deadletter_for(
            msg.data,
            streams.EVENTS,
            seq,
            msg.subject,
            streams.SCHEDULER_COMPLETIONS,
            reason,
            time.time(),
        )
        await batch.publish(subject, data, headers["Nats-Msg-Id"])

    async def _verdict(
        self, js: JetStreamContext, ev: CheckCompleted, seq: int
    ) -> TaskJudged | None:
        """The verdict on ``ev``, or None when there is none to give: its group was removed,
        it was judged before a restart, it does not answer the request in force for its
        location and group (forged, or late: the projector records the first as a dead
        letter and keeps the second as a result), or that request was completed before (the
        projector records it as a dead letter)."""
        assert self.config is not None
        tasks = self.groups.get(ev.group)
        if not tasks:  # removed, or another shard's
            return None
        gs = self.group_states[ev.group]
        if seq <= gs.last_completion:
            return None
        latest = await self._latest_request(
            js, ev.location, ev.group, request.is_on_demand(ev.request)
        )
        stray = {o.task for o in ev.outcomes} - {t.id for t in tasks}
        if latest != ev.request or (stray and not await self._asked(js, ev, stray)):
            # Not judged, as the projector does not store it: no verdict without its result.
            log.warning(
                "completion not judged: it answers no request in force",
                subject=subjects.completed(ev.agent, ev.location, ev.group),
                request=ev.request[:80],
            )
            return None
        if await self._completed_before(js, ev, seq):
            # Not judged, as the projector does not store it: the request's first completion
            # was its result (the duplicate window dropped no later one: another agent, or
            # the same past the window).
            log.warning(
                "completion not judged: its request was completed before",
                subject=subjects.completed(ev.agent, ev.location, ev.group),
                request=ev.request[:80],
            )
            return None
        verdict = judge(tasks, self.task_states, gs, ev, seq, self.config.ssl_thresholds)
        if not request.is_on_demand(ev.request):
            self.answered.add(self.requests[(ev.location, ev.group)])
        if all(len(t.locations) < 2 for t in tasks):
            return verdict  # checked from one location: nothing to combine (as ``combine``)
        return self.by_location.combine(
            tasks,
            self.task_states,
            ev.location,
            verdict,
            configured(self.config.websites, self.config.general, tasks[0].domain),
            thresholds(self.config.general),
        )

    async def _latest_request(
        self, js: JetStreamContext, location: str, group: str, now: bool = False
    ) -> str | None:
        """The id of the last request published for ``location`` and ``group``: remembered
        when this scheduler published it, read from the log otherwise (a new term).
        ``now``: the last "check now" request instead, always read from the log (they have a
        subject of their own, so neither hides the other)."""
        key = (location, group)
        if key in self.requests and not now:
            return self.requests[key]
        req = await self._last_request(js, location, group, now)
        latest = req.request if req is not None else None
        if not now:
            self.requests[key] = latest
            self.unverified.add(key)  # was it completed before this term? Asked once.
        return latest

    async def _completed_before(self, js: JetStreamContext, ev: CheckCompleted, seq: int) -> bool:
        """Whether ``ev``'s request (the one in force) was completed before ``seq``: known for
        the requests this term published or saw completed; else (read from the log in a new
        term, or a "check now" request: rare) looked up in the log as the projector decides:
        the first completion after the request on its location and group that answers it."""
        now = request.is_on_demand(ev.request)
        key = (ev.location, ev.group)
        if not now:
            if ev.request in self.answered:
                return True
            if key not in self.unverified:
                return False
            self.unverified.discard(key)
            if await self._completed_in_log(js, ev, seq, now):
                self.answered.add(self.requests[key])
                return True
            return False
        return await self._completed_in_log(js, ev, seq, now)

    async def _completed_in_log(
        self, js: JetStreamContext, ev: CheckCompleted, seq: int, now: bool
    ) -> bool:
        key = (ev.location, ev.group)
        subject = (subjects.requested_now if now else subjects.requested)(*key)
        raw = await self._get(js, subject)
        req = _request_of(raw)
        if raw is None or req is None or req.request != ev.request:
            return False  # not the request in force after all: nothing completed it before
        asked = {c.task for c in req.checks}
        completed = f"{subjects.PREFIX}.check.completed.*.{ev.location}.{ev.group}"
        at = (raw.seq or 0) + 1
        while at < seq:
            found = await self._get(js, completed, at)
            if found is None or (found.seq or 0) >= seq:
                return False
            at = (found.seq or 0) + 1
            try:
                earlier = lenient.decode(found.data or b"", found.subject or "?")
            except codec.DecodeError:
                continue  # poison: recorded by whoever met it, never a completion
            if (
                isinstance(earlier, CheckCompleted)
                and earlier.request == ev.request
                and asked.issuperset(o.task for o in earlier.outcomes)
            ):
                return True
        return False

    async def _asked(self, js: JetStreamContext, ev: CheckCompleted, tasks: set[str]) -> bool:
        """Whether the request ``ev`` answers asked for ``tasks``, which are not the group's
        (any more: a request from before a configuration change may have asked for them; with
        any other, the projector refuses the whole completion)."""
        now = request.is_on_demand(ev.request)
        req = await self._last_request(js, ev.location, ev.group, now)
        return (
            req is not None and req.request == ev.request and tasks <= {c.task for c in req.checks}
        )

    async def _last_request(
        self, js: JetStreamContext, location: str, group: str, now: bool
    ) -> CheckRequested | None:
        """The last request on the subject of ``location`` and ``group``, read from the log."""
        subject = (subjects.requested_now if now else subjects.requested)(location, group)
        return _request_of(await self._get(js, subject))

    async def _get(
        self, js: JetStreamContext, subject: str, after: int | None = None
    ) -> RawStreamMsg | None:
        """The last message of EVENTS on ``subject`` or, ``after`` a sequence, the first at or
        after it; None when there is none. Retried while JetStream is away."""
        delay = 0.25
        while True:
            try:
                if after is None:
                    return await js.get_last_msg(streams.EVENTS, subject)
                return await js.get_msg(streams.EVENTS, after, subject, next=True)
            except NotFoundError:
                return None
            except Exception as exc:
                if not streams.transient(exc) or self.stopping.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _request_of(raw: RawStreamMsg | None) -> CheckRequested | None:
    if raw is None:
        return None
    try:
        req = codec.decode(raw.data or b"", raw.subject or "?")
    except codec.DecodeError as exc:
        # Poison as the last message of the subject (the projector records it): no request
        # is known, so none is answered and the group is dispatched anew. Raised, it kept
        # the scheduler from ever taking over (the message stays last until a request).
        log.warning(
            "the last request of a group is no request", subject=raw.subject, error=str(exc)
        )
        return None
    return req if isinstance(req, CheckRequested) else None
