"""Host observations → host tasks and their verdicts, while this scheduler holds the lease.

Each observation is judged as it lands (``checks.hostjudge``, pure) against the ``hosts``
section in force. The tasks it judges are published first as a ``config.applied`` on the
host's own subject (``tocsin.host.tasks.<agent>``, source ``hosts:<agent>``), apart from the
configuration file's chain, so the projector lists them like any task and the audit trail
shows when a filesystem appeared; then the verdict, as a ``task.judged`` on the
host's group, so the notifier, the projector and the pages treat it like a check's. A host
silent for longer than ``STALE_AFTER`` intervals gets one ``unknown`` verdict.

The silence counts from when the log received the host's last figures (its clock: the
agent's may run fast or slow), or from when this scheduler started watching when that is
later: its restore, or its last reconnect to NATS (what no one could hear is no silence).
It is judged only while connected, and only once this scheduler has read every figure the
log holds from that host (its consumer may be catching up after a reconnect). Figures dated
before the latest ones read (a replay, a late delivery) are not judged: they are not the
host's state now.

The observations are read with an ordered consumer from the log, from the one after the last
the restore read: nothing is lost to a reconnect, and the judgement's message id is the
observation's stream sequence, so a second judge of one observation lands once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from msgspec.structs import replace
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from checks.hostjudge import HostTaskState, agent_of, judge, stale
from configuration import config as configuration
from configuration import diff as configdiff
from configuration.hosts import SOURCE_PREFIX
from events import codec, streams, subjects
from events.types import ConfigApplied, HostObserved, TaskDef, TaskJudged
from runtime import bus
from runtime.logs import Log
from runtime.stalls import Stalls

log = Log("tocsin.scheduler.hosts")

#: Seconds between two looks for silent hosts: small beside any interval, so that a silent
#: host is unknown well within two intervals.
TICK = 0.25
#: Seconds a turn may take before this process counts as having stalled (runtime/stalls.py).
STALL = 4 * TICK


@dataclass
class LastHeard:
    """A host's latest figures, as this scheduler read them from the log."""

    #: When the log received figures of it last (the log's clock): its silence counts from here.
    received: float
    #: When the latest figures were taken, by the agent's clock but never after ``received``:
    #: figures taken before are older (an hour-fast clock once does not hide the next ones).
    taken: float
    interval: float
    subject: str


class HostJudging:
    def __init__(self, current: Callable[[], configuration.Config | None]) -> None:
        self.current = current
        self.states: dict[str, HostTaskState] = {}
        self.defs: dict[str, TaskDef] = {}  # host tasks in force, from the log
        self.heard: dict[str, LastHeard] = {}  # by agent
        #: The last stream sequence of host figures read: any after it in the log is still
        #: on its way to this scheduler.
        self.read_upto = 0
        #: What was last refused of each agent's (logged once, until it passes again).
        self.refusals: dict[str, str] = {}
        #: When this scheduler started watching (its restore, its last reconnect): before, no
        #: one judged.
        self.watched_from = time.time()

    def tasks_of(self, agent: str) -> list[str]:
        return sorted(t.id for t in self.defs.values() if agent_of(t.group) == agent)

    async def restore(self, js: JetStreamContext) -> None:
        self.watched_from = time.time()
        applied = []
        async for msg in bus.replay(js, subjects.HOST_TASKS_ALL):
            with contextlib.suppress(codec.DecodeError):
                ev = codec.decode(msg.data, msg.subject)
                if isinstance(ev, ConfigApplied):
                    applied.append(ev)
        self.defs = configdiff.fold(applied)
        async for msg in bus.replay(js, subjects.JUDGED_ALL, last_per_subject=True):
            with contextlib.suppress(codec.DecodeError):
                ev = codec.decode(msg.data, msg.subject)
                if isinstance(ev, TaskJudged) and agent_of(ev.group) is not None:
                    for j in ev.judgements:
                        # A breach that was judged stays judged: its "for" has elapsed already.
                        since = 0.0 if j.severity in ("warning", "critical") else None
                        crit = 0.0 if j.severity == "critical" else None
                        self.states[j.task] = HostTaskState(j.severity, j.failures, since, crit)
        async for msg in bus.replay(js, subjects.HOST_OBSERVED_ALL, last_per_subject=True):
            self.read_upto = max(self.read_upto, msg.metadata.sequence.stream)
            with contextlib.suppress(codec.DecodeError):
                ev = codec.decode(msg.data, msg.subject)
                if isinstance(ev, HostObserved):
                    self._heard(ev, msg.subject, _received(msg))

    async def run(self, nc: Client, js: JetStreamContext, stopping: asyncio.Event) -> None:
        await self.restore(js)
        link = bus.Link(nc)
        # From the one after the last the restore read: figures landing in between are judged.
        start = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.read_upto + 1
        )
        sub = await js.subscribe(subjects.HOST_OBSERVED_ALL, ordered_consumer=True, config=start)
        stalls = Stalls(STALL)
        try:
            while not stopping.is_set():
                try:
                    msg = await sub.next_msg(timeout=TICK)
                except (TimeoutError, NatsTimeout):
                    msg = None
                if stalls.gap():
                    # Not running, it read no figures: the figures sent meanwhile come next.
                    self.watched_from = time.time()
                if msg is not None:
                    seq = msg.metadata.sequence.stream
                    await self._observed(js, msg.data, msg.subject, seq, _received(msg))
                # NATS away, no figures can come: no silence is judged, and once back every
                # host has its whole time again, as after a restart.
                if link.up():
                    self.watched_from = max(self.watched_from, link.since)
                    await self._silent_hosts(js, time.time())
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def _heard(self, ev: HostObserved, subject: str, received: float) -> float | None:
        """Note figures received; when they were taken if they are the host's latest (to be
        judged), None otherwise."""
        taken = min(ev.at, received)
        before = self.heard.get(ev.agent)
        if before is not None and taken <= before.taken:
            # Older than the latest (a replay, a late delivery): the host is no more silent
            # for it, but those figures are not its state now.
            before.received = max(before.received, received)
            return None
        if before is not None:
            received = max(received, before.received)
        self.heard[ev.agent] = LastHeard(received, taken, ev.interval, subject)
        return taken

    async def _observed(
        self, js: JetStreamContext, data: bytes, subject: str, seq: int, received: float
    ) -> None:
        """One message of the log's host figures (``received``: when the log stored it)."""
        self.read_upto = max(self.read_upto, seq)
        try:
            ev = codec.decode(data, subject)
        except codec.DecodeError:
            return  # the projector records undecodable events as dead letters
        if not isinstance(ev, HostObserved):  # the contract ties its agent to its subject
            return
        taken = self._heard(ev, subject, received)
        if taken is None:
            return
        cfg = self.current()
        if cfg is None or cfg.hosts is None:
            await self._define(js, ev.agent, {})  # no hosts section: no host tasks
            return
        # Judged as of when taken: a clock running fast dates no verdict in the future.
        verdict, defs, after = judge(replace(ev, at=taken), cfg.hosts.rules(ev.agent), self.states)
        if not await self._define(js, ev.agent, defs):
            return  # a verdict on tasks nobody knows would be judged and shown as orphans
        if await self._judged(js, ev.agent, verdict, f"judged.host.{seq}"):
            self.refusals.pop(ev.agent, None)
            self.states.update(after)

    async def _judged(
        self, js: JetStreamContext, agent: str, verdict: TaskJudged, msg_id: str
    ) -> bool:
        """Publish a host's verdict unless the contract refuses it (said once per reason)."""
        subject = subjects.judged(verdict.group)
        try:
            data = codec.encode_admitted(verdict, subject)
        except codec.DecodeError as exc:
            self._refused(agent, "host verdict refused by the event contract", exc)
            return False
        await bus.publish_until_acked(js, subject, data, msg_id)
        return True

    def _refused(self, agent: str, what: str, exc: codec.DecodeError) -> None:
        """Log a refusal once for as long as the agent's observations meet it (they come every
        interval: the same refusal each time would drown the log), naming the agent."""
        if self.refusals.get(agent) != what:
            self.refusals[agent] = what
            log.error(what, agent=agent, error=str(exc)[:2000])

    async def _define(self, js: JetStreamContext, agent: str, defs: dict[str, TaskDef]) -> bool:
        """Publish what changed in the host's task set (nothing when nothing did); whether
        ``defs`` are the host's tasks in force now."""
        old = {t: self.defs[t] for t in self.tasks_of(agent)}
        added, changed, removed = configdiff.diff(old, defs)
        if configdiff.changes_are_empty(added, changed, removed):
            return True
        source = f"{SOURCE_PREFIX}{agent}"
        # Fingerprints of the whole definitions (a threshold change keeps the task ids): the
        # message id of a changed set never repeats one the duplicate window would drop.
        revision = configuration.task_id("", "", 0, None, source, [defs[k] for k in sorted(defs)])
        base = configuration.task_id("", "", 0, None, "state", [old[k] for k in sorted(old)])
        event = ConfigApplied(
            at=time.time(),
            revision=revision,
            source=source,
            applied_by="scheduler",
            added=added,
            changed=changed,
            removed=removed,
        )
        subject = subjects.host_tasks(agent)
        try:
            data = codec.encode_admitted(event, subject)
        except codec.DecodeError as exc:
            # Never published: every consumer would dead-letter it. The tasks stay as they were.
            self._refused(agent, "host tasks refused by the event contract", exc)
            return False
        await bus.publish_until_acked(js, subject, data, f"config.{revision}.{base}")
        for t in removed:
            self.defs.pop(t, None)
            self.states.pop(t, None)
        self.defs.update(defs)
        log.info(
            "host tasks", agent=agent, added=len(added), changed=len(changed), removed=len(removed)
        )
        return True

    async def _silent_hosts(self, js: JetStreamContext, now: float) -> None:
        for agent, heard in list(self.heard.items()):
            tasks = self.tasks_of(agent)
            found = stale(
                agent, tasks, self.states, heard.received, heard.interval, now, self.watched_from
            )
            if found is None or not await self._read_all_of(js, heard.subject):
                continue
            verdict, after = found
            # The log's time, the same for any scheduler judging this silence: it lands once.
            msg_id = f"judged.host.silent.{agent}.{int(heard.received * 1000)}"
            if await self._judged(js, agent, verdict, msg_id):
                self.states.update(after)
                log.warning("host silent", agent=agent, since=heard.received)

    async def _read_all_of(self, js: JetStreamContext, subject: str) -> bool:
        """Whether this scheduler has read every figure the log holds on ``subject``: False
        while newer ones wait for its consumer, or when NATS cannot tell (away, electing)."""
        try:
            last = await js.get_last_msg(streams.EVENTS, subject)
        except NotFoundError:
            return True  # none left in the log: nothing newer either
        except Exception as exc:
            if streams.transient(exc):
                return False
            raise
        return (last.seq or 0) <= self.read_upto


def _received(msg: Msg) -> float:
    """When the log stored a message its consumer handed."""
    return msg.metadata.timestamp.timestamp()
