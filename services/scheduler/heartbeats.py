"""Heartbeat (push) monitors: the scheduler judges pings, and their absence, like results.

A ping (``monitor.pinged``, recorded by the web's ping endpoint) is judged at
once: success → ok (with the run's duration after a ``start``), fail or a
non-zero exit code → critical. A ``start`` gives the run ``grace`` to finish.
When a deadline passes without a ping the monitor is critical ("late"); the
next deadline is the following due time plus grace. Every verdict is a
``task.judged`` event whose ``next_run`` is the deadline and whose
``completion`` is the stream sequence of the last ping judged, so a restarted
scheduler restores both from the log and skips what it judged already.

A deadline that passed while no scheduler watched stands (the schedule counts from the last
ping, as healthchecks.io's does: a missed nightly job is still reported), but is judged no
earlier than one grace after the restart. Pings recorded meanwhile are in the log and judged
first; one the web could not record (stopped too, as in a stopped ``tocsin dev``) gets the
grace a job's retries need, instead of the flood of alerts healthchecks.io users see after
its downtime (healthchecks#664). A NATS outage is the same: no deadline is judged while the
scheduler is away from NATS, and once back, none earlier than one grace after.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from checks import heartbeat as schedule
from checks import pushed
from checks.judge import TaskState
from events import codec, streams, subjects
from events.types import Judgement, MonitorPinged, TaskDef, TaskJudged
from runtime import bus
from runtime.logs import Log
from runtime.stalls import Stalls

log = Log("tocsin.scheduler.heartbeats")
PUBLISH_ACK_WAIT = 5.0
BATCH = 100


#: Seconds a turn may take (its fetch of up to 1 s, the verdicts published) before this
#: process counts as having stalled (runtime/stalls.py).
STALL = 3.0


def is_push(task: TaskDef) -> bool:
    """A task no agent probes: the scheduler judges its pings instead."""
    return pushed(task.check)


def dispatched(tasks: Iterable[TaskDef]) -> list[TaskDef]:
    """The tasks that agents probe: the scheduler sends requests for these."""
    return [t for t in tasks if not is_push(t)]


@dataclass
class Push:
    """What the scheduler knows of one heartbeat monitor between pings."""

    task: TaskDef
    deadline: float
    completion: int = 0
    started: float | None = None
    last_ping: float | None = None


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _judged(push: Push, prev: TaskState, severity: str, reason: str, at: float) -> TaskJudged:
    failures = 0 if severity == "ok" else prev.failures + 1
    return TaskJudged(
        at=at,
        group=push.task.group,
        completion=push.completion,
        next_run=push.deadline,
        judgements=[Judgement(push.task.id, severity, prev.severity, reason, failures)],  # type: ignore[arg-type]
    )


def on_ping(push: Push, prev: TaskState, ping: MonitorPinged, seq: int) -> TaskJudged:
    """The verdict on one ping; updates ``push`` (deadline, run start, last judged ping)."""
    expected = push.task.expected
    push.completion, push.last_ping = seq, ping.at
    if ping.kind == "start":
        push.started = ping.at
        push.deadline = ping.at + float(expected["grace"])
        severity = prev.severity or "ok"
        return _judged(push, prev, severity, "the job started", ping.at)
    ran = f", ran {ping.at - push.started:.1f}s" if push.started is not None else ""
    push.started = None
    push.deadline = schedule.deadline(expected, ping.at)
    if ping.kind == "fail":
        said = f"exit code {ping.exit_code}" if ping.exit_code is not None else "failure"
        return _judged(push, prev, "critical", f"the job reported {said}{ran}", ping.at)
    return _judged(push, prev, "ok", f"ping received{ran}", ping.at)


def on_time(push: Push, prev: TaskState, now: float) -> TaskJudged | None:
    """The verdict once the deadline has passed without a ping (``None`` before it)."""
    if now < push.deadline:
        return None
    grace = float(push.task.expected["grace"])
    if push.started is not None:
        reason = f"started at {_when(push.started)} and did not finish within {grace:g}s"
    elif push.last_ping is not None:
        reason = f"late: no ping since {_when(push.last_ping)} (grace {grace:g}s)"
    else:
        reason = f"late: no ping yet (grace {grace:g}s)"
    push.started = None
    push.deadline = schedule.deadline(push.task.expected, now)
    return _judged(push, prev, "critical", reason, now)


def resumed(push: Push, watched_from: float) -> float:
    """The deadline of a monitor restored from the log: its last verdict's, never earlier than
    one grace after ``watched_from`` (when this scheduler started watching)."""
    return max(push.deadline, watched_from + float(push.task.expected["grace"]))


class Heartbeats:
    """The heartbeat monitors of the configuration in force, and the loop that judges them."""

    def __init__(self) -> None:
        self.pushes: dict[str, Push] = {}
        self.states: dict[str, TaskState] = {}

    def configure(self, tasks: list[TaskDef], now: float, seq: int = 0) -> None:
        """The monitors in force; a new one is due from now (plus its grace). One whose
        schedule does not read is reported and left out: the log's tasks are whatever a
        publisher with credentials wrote, and one of them must not stop the scheduler.
        ``seq``: the last ``config.applied`` of the configuration in force, for that report."""
        current: dict[str, tuple[TaskDef, float]] = {}
        for t in tasks:
            try:
                current[t.group] = (t, schedule.deadline(t.expected, now))
            except Exception as exc:
                log.error(
                    "heartbeat monitor refused; skipped",
                    subject=subjects.CONFIG_APPLIED,
                    seq=seq,
                    task=t.id,
                    domain=t.domain,
                    reason=f"{type(exc).__name__}: {exc}",
                )
        for group in self.pushes.keys() - current.keys():
            del self.pushes[group]
        for group, (task, deadline) in current.items():
            if group in self.pushes:
                self.pushes[group].task = task
            else:
                self.pushes[group] = Push(task, deadline)

    async def restore(self, js: JetStreamContext) -> None:
        """Deadlines and severities from the last verdicts, a run in progress from the last ping;
        a deadline no earlier than one grace from now (``resumed``)."""
        watched_from = time.time()
        async for msg in bus.replay(js, subjects.JUDGED_ALL, last_per_subject=True):
            ev = _decode(msg.data, msg.subject)
            push = self.pushes.get(ev.group) if isinstance(ev, TaskJudged) else None
            if push is None or not isinstance(ev, TaskJudged):
                continue
            push.deadline, push.completion = ev.next_run, ev.completion
            for j in ev.judgements:
                self.states[j.task] = TaskState(j.severity, j.failures)
        async for msg in bus.replay(js, subjects.PINGED_ALL, last_per_subject=True):
            ev = _decode(msg.data, msg.subject)
            push = self.pushes.get(ev.group) if isinstance(ev, MonitorPinged) else None
            if push is None or not isinstance(ev, MonitorPinged):
                continue
            push.last_ping = ev.at
            if ev.kind == "start" and msg.metadata.sequence.stream <= push.completion:
                push.started = ev.at
        for push in self.pushes.values():
            push.deadline = resumed(push, watched_from)

    async def run(self, nc: Client, js: JetStreamContext, stopping: asyncio.Event) -> None:
        """Judge pings as they come (after the last judged one) and deadlines as they pass.

        NATS away, a stream leader election or the ephemeral consumer gone: a warning, then
        the pings again from the one after the last seen (a judged one is skipped by its
        sequence), never a dead loop that would stop the scheduler.
        """
        next_seq = min((p.completion for p in self.pushes.values()), default=0) + 1
        sub = None
        stalls = Stalls(STALL)
        link = bus.Link(nc)
        watched_from = link.since
        try:
            while not stopping.is_set():
                if not self.pushes:  # none configured (yet): nothing to follow
                    await asyncio.sleep(1.0)
                    continue
                nxt = min(p.deadline for p in self.pushes.values())
                wait = min(max(nxt - time.time(), 0.05), 1.0)
                try:
                    if sub is None:
                        sub = await _subscribe(js, next_seq)
                    msgs = await sub.fetch(BATCH, timeout=wait)
                except (TimeoutError, NatsTimeout):
                    msgs = []
                except Exception as exc:
                    log.warning("fetch of pings failed", error=str(exc) or type(exc).__name__)
                    await _drop(sub)
                    sub = None
                    await asyncio.sleep(0.5)
                    continue
                if stalls.gap():
                    # Not running, it read no ping: those sent meanwhile come next, and a
                    # deadline is one grace from now at the earliest, as after a restart.
                    now = time.time()
                    for push in self.pushes.values():
                        push.deadline = resumed(push, now)
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    next_seq = seq + 1
                    await self._ping(js, msg.data, msg.subject, seq)
                if not link.up():
                    continue  # NATS away: no ping could be recorded, none is late
                if link.since > watched_from:  # back: as after a restart
                    watched_from = link.since
                    for push in self.pushes.values():
                        push.deadline = resumed(push, watched_from)
                if len(msgs) < BATCH:  # pings of the backlog first: they may be in time
                    await self._tick(js, time.time())
        finally:
            await _drop(sub)

    async def _ping(self, js: JetStreamContext, data: bytes, subject: str, seq: int) -> None:
        ev = _decode(data, subject)
        push = self.pushes.get(ev.group) if isinstance(ev, MonitorPinged) else None
        if push is None or not isinstance(ev, MonitorPinged) or seq <= push.completion:
            return  # not a monitor in force, or judged before a restart
        verdict = on_ping(push, self.states.get(push.task.id, TaskState()), ev, seq)
        await self._publish(js, verdict, f"judged.{seq}")

    async def _tick(self, js: JetStreamContext, now: float) -> None:
        for push in list(self.pushes.values()):
            due = push.deadline
            verdict = on_time(push, self.states.get(push.task.id, TaskState()), now)
            if verdict is not None:
                await self._publish(js, verdict, f"judged.late.{push.task.group}.{int(due * 1000)}")

    async def _publish(self, js: JetStreamContext, verdict: TaskJudged, msg_id: str) -> None:
        await bus.publish_until_acked(
            js,
            subjects.judged(verdict.group),
            codec.encode(verdict),
            msg_id,
            ack_wait=PUBLISH_ACK_WAIT,
        )
        for j in verdict.judgements:
            self.states[j.task] = TaskState(j.severity, j.failures)


async def _subscribe(js: JetStreamContext, first: int) -> JetStreamContext.PullSubscription:
    """An ephemeral, ack-less reader of the pings from stream sequence ``first`` on."""
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=first,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0,
        filter_subject=subjects.PINGED_ALL,
    )
    return await js.pull_subscribe(
        subjects.PINGED_ALL, durable=None, stream=streams.EVENTS, config=config
    )


async def _drop(sub: JetStreamContext.PullSubscription | None) -> None:
    if sub is not None:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


def _decode(data: bytes, subject: str) -> object:
    try:
        return codec.decode(data, subject)
    except codec.DecodeError as exc:
        log.warning("undecodable event skipped", subject=subject, error=str(exc))
        return None
