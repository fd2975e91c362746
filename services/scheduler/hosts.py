"""Host observations → host tasks and their verdicts, while this scheduler holds the lease.

Each observation is judged as it lands (``checks.hostjudge``, pure) against the ``hosts``
section in force. The tasks it judges are published first as a ``config.applied`` on the
host's own subject (``tocsin.host.tasks.<agent>``, source ``hosts:<agent>``), apart from the
configuration file's chain, so the projector lists them like any task and the audit trail
shows when a filesystem appeared; then the verdict, as a ``task.judged`` on the
host's group, so the notifier, the projector and the pages treat it like a check's. A host
silent for longer than ``STALE_AFTER`` intervals gets one ``unknown`` verdict; the silence
counts from its last figures, or from this scheduler's restore when that is later.

The observations are read with an ordered consumer from the log (deliver *new*, after the
restore): nothing is lost to a reconnect, and the judgement's message id is the
observation's stream sequence, so a second judge of one observation lands once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from checks.hostjudge import HostTaskState, agent_of, judge, stale
from configuration import config as configuration
from configuration import diff as configdiff
from configuration.hosts import SOURCE_PREFIX
from events import codec, subjects
from events.types import ConfigApplied, HostObserved, TaskDef, TaskJudged
from runtime import bus
from runtime.logs import Log

log = Log("tocsin.scheduler.hosts")

#: Seconds between two looks for silent hosts: small beside any interval, so that a silent
#: host is unknown well within two intervals.
TICK = 0.25


class HostJudging:
    def __init__(self, current: Callable[[], configuration.Config | None]) -> None:
        self.current = current
        self.states: dict[str, HostTaskState] = {}
        self.defs: dict[str, TaskDef] = {}  # host tasks in force, from the log
        self.last_seen: dict[str, tuple[float, float]] = {}  # agent → (at, interval)
        #: What was last refused of each agent's (logged once, until it passes again).
        self.refusals: dict[str, str] = {}
        #: When this scheduler started watching (its restore): before, no one judged.
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
            with contextlib.suppress(codec.DecodeError):
                ev = codec.decode(msg.data, msg.subject)
                if isinstance(ev, HostObserved):
                    self.last_seen[ev.agent] = (ev.at, ev.interval)

    async def run(self, js: JetStreamContext, stopping: asyncio.Event) -> None:
        await self.restore(js)
        sub = await js.subscribe(
            subjects.HOST_OBSERVED_ALL, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
        )
        try:
            while not stopping.is_set():
                try:
                    msg = await sub.next_msg(timeout=TICK)
                except (TimeoutError, NatsTimeout):
                    msg = None
                if msg is not None:
                    await self._observed(js, msg.data, msg.subject, msg.metadata.sequence.stream)
                await self._silent_hosts(js, time.time())
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _observed(self, js: JetStreamContext, data: bytes, subject: str, seq: int) -> None:
        try:
            ev = codec.decode(data, subject)
        except codec.DecodeError:
            return  # the projector records undecodable events as dead letters
        if not isinstance(ev, HostObserved):  # the contract ties its agent to its subject
            return
        self.last_seen[ev.agent] = (ev.at, ev.interval)
        cfg = self.current()
        if cfg is None or cfg.hosts is None:
            await self._define(js, ev.agent, {})  # no hosts section: no host tasks
            return
        verdict, defs, after = judge(ev, cfg.hosts.rules(ev.agent), self.states)
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
        for agent, (at, interval) in list(self.last_seen.items()):
            found = stale(
                agent, self.tasks_of(agent), self.states, at, interval, now, self.watched_from
            )
            if found is None:
                continue
            verdict, after = found
            msg_id = f"judged.host.silent.{agent}.{int(at * 1000)}"
            if await self._judged(js, agent, verdict, msg_id):
                self.states.update(after)
                log.warning("host silent", agent=agent, since=at)
