"""What the scheduler's loops share: the task set in force, the plan, the verdicts so far.

The loops themselves live in ``dispatch``, ``judging`` and ``deadletters``; each is a
mixin over this state, and ``service.Scheduler`` puts them together under the lease.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from dataclasses import dataclass, field

from nats.js import JetStreamContext

from checks import request
from checks.judge import GroupState, TaskState, apply
from checks.quorum import LocationMemory
from configuration import config as configuration
from events import codec, streams, subjects
from events.types import TaskDef, TaskJudged
from runtime import bus
from runtime.logs import Log
from security.sealing import Sealer
from services.scheduler.heartbeats import Heartbeats
from services.scheduler.plan import Outstanding, Plan

log = Log("tocsin.scheduler")

#: Seconds to wait for JetStream's ack of a publish before publishing it again (same message
#: id, so it lands once).
PUBLISH_ACK_WAIT = 5.0


@dataclass
class SchedulerOptions:
    nats_url: str
    config_path: str
    tuning: streams.Tuning = field(default_factory=streams.Tuning)
    lease_ttl: float = 10.0
    applied_by: str = ""
    #: "Check now" runs a request group at most once per this many seconds.
    check_now_every: float = request.ON_DEMAND_EVERY
    #: Shards the task groups hash into; 1 = one scheduler dispatches all (others stand by).
    shards: int = 1
    #: Where ``locations/<loc>.pub`` keys are: request secrets are sealed for those locations.
    security_dir: str | None = field(default_factory=lambda: os.environ.get("TOCSIN_SECURITY_DIR"))


class SchedulerState:
    def __init__(self, opts: SchedulerOptions, shard: int = 0) -> None:
        self.opts = opts
        #: The shard whose groups this scheduler dispatches and judges; shard 0 also runs
        #: what is not per group (dead letters, hosts, push monitors).
        self.shard = shard
        #: The configuration in force: the log's settings (thresholds, quorum …), with the
        #: secret values of ``own``; its tasks are in ``groups`` (``tasks`` left empty).
        self.config: configuration.Config | None = None
        #: This scheduler's file: the secret values it can send, and what SIGHUP applies.
        self.own: configuration.Config | None = None
        #: Stream sequence of the last ``config.applied`` this scheduler runs.
        self.applied_seq = 0
        self.groups: dict[str, list[TaskDef]] = {}
        #: Every request group in force, whatever its shard (shard 0 only: "check now").
        self.every_group: dict[str, list[TaskDef]] = {}
        self.task_states: dict[str, TaskState] = {}
        self.group_states: dict[str, GroupState] = defaultdict(GroupState)
        self.plan = Plan()
        self.outstanding = Outstanding()
        #: group → due time of its outstanding request (set through ``outstanding.add``).
        self.in_flight = self.outstanding.due
        #: (location, group) → id of the last request published: what a completion must answer.
        self.requests: dict[tuple[str, str], str | None] = {}
        #: A request is completed once: the requests in force (of ``requests``, the very
        #: objects) whose first completion was judged; any later one is not. A request leaves
        #: when the next of its group is published. A set of shared strings: a few tens of
        #: bytes per group, not a record each (the scheduler's memory per task is a target).
        self.answered: set[str | None] = set()
        #: The keys of ``requests`` read from the log (a new term): whether their request was
        #: completed before is looked up in the log once, at their first completion.
        self.unverified: set[tuple[str, str]] = set()
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self.sealer = Sealer.from_dir(opts.security_dir)
        self.by_location = LocationMemory()  # each location's latest severities, for the quorum
        self.heartbeats = Heartbeats()  # push monitors: judged from pings, never dispatched
        self._background: set[asyncio.Task[None]] = set()

    def _forget(self) -> None:
        """Drop what the last term as leader knew: another scheduler may have dispatched and
        judged since, and ``_restore`` reads the truth from the log on the next term."""
        self.groups, self.task_states, self.every_group = {}, {}, {}
        self.group_states = defaultdict(GroupState)
        self.plan, self.outstanding, self.requests = Plan(), Outstanding(), {}
        self.answered, self.unverified = set(), set()
        self.in_flight = self.outstanding.due
        self.by_location = LocationMemory()
        self.heartbeats = Heartbeats()

    async def _publish_judged(self, js: JetStreamContext, verdict: TaskJudged, msg_id: str) -> None:
        # Retried until it lands: the group is out of in_flight and not yet planned again, so
        # a verdict dropped here (NATS away) would never be dispatched again.
        await bus.publish_until_acked(
            js,
            subjects.judged(verdict.group),
            codec.encode(verdict),
            msg_id,
            ack_wait=PUBLISH_ACK_WAIT,
        )
        apply(self.task_states, verdict)
        self.plan.set(verdict.group, verdict.next_run)
        self.wake.set()
