"""The scheduler: configuration → check requests, and completions → judgements.

It restores what it needs from the log at start (the task set in force, the
last judgement of every group), so it keeps no state of its own. The tasks it
runs, and the settings it judges them with, are the log's (the fold of every
``config.applied``), followed as applies land; its file only seeds a log that holds none
that reads, holds the secret values it sends, and is applied again on SIGHUP, exactly
like ``tocsin config apply``. A restart never reverts an apply. Its loops are in
``dispatch``, ``judging`` and ``deadletters``, its taking over in ``restore``; this module
runs them while
the scheduler holds the lease. Sharded (``--shards``), one such scheduler runs per
shard held, over that shard's groups only (``shards``).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections import defaultdict
from dataclasses import replace

from nats.aio.client import Client
from nats.js import JetStreamContext

from checks.judge import GroupState
from configuration import config as configuration
from configuration import memory, redaction
from configuration.diff import TooLarge
from configuration.inforce import (
    InForce,
    Refused,
    apply_config,
    configuration_in_force,
    in_force,
    last_applied_seq,
    who,
)
from events import streams
from events.types import TaskDef
from runtime import bus, ending
from runtime.pubacks import Publisher
from services.scheduler import layout, ondemand
from services.scheduler.deadletters import DeadLettering
from services.scheduler.dispatch import Dispatching
from services.scheduler.heartbeats import dispatched, is_push
from services.scheduler.hosts import HostJudging
from services.scheduler.leader import Lease
from services.scheduler.plan import shard_of, spread, work_tuning
from services.scheduler.restore import Restoring
from services.scheduler.state import SchedulerOptions, log

__all__ = ["Scheduler", "SchedulerOptions", "main"]

#: Seconds between two looks for a configuration applied elsewhere (one direct get each).
CONFIG_POLL = 1.0


class Scheduler(Dispatching, Restoring, DeadLettering):
    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def request_reload(self) -> None:
        self.reload_requested.set()

    async def run(self) -> None:
        first = configuration.parse(self.opts.config_path)  # refuse to start on a bad file
        nc = await bus.connect(self.opts.nats_url, "scheduler", self.stopping)
        js = nc.jetstream()
        try:
            tuning = work_tuning(self.opts.tuning, dispatched(first.tasks.values()))
            await streams.ensure_retrying(js, first.locations, tuning, self.stopping)
            # One shard, as every scheduler running must say too: refused before any lease.
            bucket = Lease(js, self.opts.lease_ttl, self.opts.tuning.replicas).bucket
            if not await layout.first_said(bucket, 1, self.opts.lease_ttl, self.stopping):
                return
            saying = asyncio.create_task(layout.keep_saying(bucket, 1, self.opts.lease_ttl))
            saying.add_done_callback(lambda _: self.stop())
            try:
                await self._terms(nc, js, first)
            finally:
                # Ended before the connection closes (at once when it ended by refusing).
                refused = await ending.ended([saying])
                # The refusal is why it stopped: it wins over what dispatching raised since.
                if refused:
                    raise refused[0]  # LayoutConflict
        finally:
            await bus.close(nc)

    async def _terms(self, nc: Client, js: JetStreamContext, first: configuration.Config) -> None:
        """Standby → active → (lease lost) → standby …: a scheduler that lost its lease (NATS
        away longer than the TTL, or a stall) stops dispatching and competes for it again
        in-process, instead of exiting and leaving the system without a scheduler."""
        while not self.stopping.is_set():
            lease = Lease(js, self.opts.lease_ttl, self.opts.tuning.replicas)
            if not await self._until_held(lease):
                return
            try:
                await self.lead(nc, js, lease, self.own or first)
            finally:
                await lease.release()
            if not self.stopping.is_set():
                log.warning(
                    "scheduler back to standby; its state is restored from the log "
                    "when it holds the lease again"
                )
                self._forget()

    async def _until_held(self, lease: Lease) -> bool:
        """Wait for the lease; False when asked to stop first (a lease taken as the stop came
        is given back at once, rather than left to expire)."""
        waiting = asyncio.create_task(lease.acquire())
        stop = asyncio.create_task(self.stopping.wait())
        try:
            await asyncio.wait({waiting, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed = await ending.ended([waiting, stop])
        if failed:
            raise failed[0]
        if not self.stopping.is_set():
            return True
        if lease.held.is_set():
            await lease.release()
        return False

    async def lead(
        self, nc: Client, js: JetStreamContext, lease: Lease, cfg: configuration.Config
    ) -> None:
        """Dispatch and judge while the lease is held; return once it is lost or on stop,
        taking over included (restoring from a large log takes a while)."""
        publisher = Publisher(nc)
        # What ends the term (its tasks are ended then, whatever each awaits): a stop, the
        # lease lost (``keep`` ends then, or dies of a bug).
        stop = asyncio.create_task(self.stopping.wait())
        ends = [stop, asyncio.create_task(lease.lost.wait()), asyncio.create_task(lease.keep())]
        taking = asyncio.create_task(self._take_over(js, publisher, cfg))
        tasks = [taking]
        try:
            await asyncio.wait({*ends, taking}, return_when=asyncio.FIRST_COMPLETED)
            if not taking.done():
                return  # stopped, or the lease lost, while taking over
            failed = taking.exception()
            if failed is not None:
                # NATS away while we read the log: give the lease back and start over (after
                # a pause, unless stopped meanwhile).
                log.warning("could not take over; back to standby", error=str(failed))
                await asyncio.wait({stop}, timeout=1)
                return
            tasks = self._loops(nc, js, publisher, lease)
            await asyncio.wait({*ends, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failures = await ending.ended([*ends, *tasks])
            # And the verdicts they left to publish on their own.
            failures += await ending.ended(list(self._background))
            await publisher.close()
        # A loop that died is a bug: exit non-zero so a supervisor restarts us.
        for exc in failures:
            if isinstance(exc, Exception):
                log.error("scheduler loop failed", error=repr(exc))
                raise exc

    async def _take_over(
        self, js: JetStreamContext, publisher: Publisher, cfg: configuration.Config
    ) -> None:
        """What a term starts from: the configuration in force and the last judgements."""
        await publisher.start()
        await self._adopt(js, cfg)
        await self._restore(js)
        if self.shard == 0:
            await self.heartbeats.restore(js)
        gc.freeze()  # what restoring built lasts as long as the term, as the tasks do

    def _loops(
        self, nc: Client, js: JetStreamContext, publisher: Publisher, lease: Lease
    ) -> list[asyncio.Task[None]]:
        """Dispatching and judging, for as long as the term lasts."""
        tasks = [
            asyncio.create_task(self._dispatch(js, publisher, lease)),
            asyncio.create_task(self._judge_completions(nc, js, publisher)),
            asyncio.create_task(self._follow_config(js)),
            asyncio.create_task(self._reloads(js)),
        ]
        if self.shard == 0:  # not per group: once, by shard 0's holder
            tasks += [
                asyncio.create_task(self._dead_letters(js)),
                asyncio.create_task(HostJudging(lambda: self.config).run(nc, js, self.stopping)),
                asyncio.create_task(self.heartbeats.run(nc, js, self.stopping)),
                # Any group, whichever shard dispatches it: one answer per ask.
                asyncio.create_task(
                    ondemand.serve(
                        nc,
                        js,
                        lambda: self.every_group,
                        # Said apart, so that asking for one is no "unknown task".
                        lambda: [p.task for p in self.heartbeats.pushes.values()],
                        self.sealer,
                        self.stopping,
                        self.opts.check_now_every,
                    )
                ),
            ]
        return tasks

    # configuration ---------------------------------------------------------------

    async def _adopt(self, js: JetStreamContext, cfg: configuration.Config) -> None:
        """Take the configuration in force from the log; a log without one that reads (empty,
        or only refused parts) gets ``cfg`` first. ``cfg`` refused too: this term runs with
        none, and takes the next good one applied."""
        self.own = cfg
        if await last_applied_seq(js) and await self._take_in_force(js) is not None:
            return
        if self.shard == 0:
            try:
                await apply_config(js, cfg, self.opts.applied_by or who())
            except (TooLarge, Refused) as exc:
                log.error("configuration refused; none in force yet", problems=str(exc))
        await self._take_in_force(js)

    async def _take_in_force(self, js: JetStreamContext) -> str | None:
        """Read the configuration in force from the log and dispatch it from here on, then
        give back what reading it took (the fold of a large one peaks at hundreds of MB
        that the allocator would otherwise keep). Its revision: None when the log holds none
        that reads."""
        assert self.own is not None
        # What the last configuration froze may be garbage now (its cycles included).
        gc.unfreeze()
        # The log's tasks as this scheduler can send them: a task's id covers its request
        # data, so where the log shows it hidden (a secret kept out of the log), the same task
        # of our own file carries the real values. The log's copy of each is dropped with its
        # part, and the fold's memory given back before anything that lasts is built:
        # long-lived objects allocated among its garbage would pin the allocator's arenas.
        now = await in_force(js, prefer=self.own.tasks)
        memory.release()
        await self._use(js, now)
        memory.release()
        # The task set, the plan and the states it was built into live until the next
        # configuration: frozen out of the collector's full passes, each of which walked the
        # whole of them again (hundreds of thousands of objects at 100,000 tasks).
        gc.freeze()
        return now.revision

    async def _use(self, js: JetStreamContext, now: InForce) -> None:
        """Dispatch the tasks ``now`` holds (as this scheduler can send them), judged with its
        settings, from here on."""
        assert self.own is not None
        self.applied_seq = now.last_seq
        config, masked = configuration_in_force(now, self.own)
        # Its tasks are in ``groups`` from here on: not kept twice (a table of 100,000 tasks
        # is 5 MB).
        self.config = replace(config, tasks={})
        if masked:
            log.warning(
                "settings in force whose secret values are neither in this scheduler's file nor "
                "in its environment: they stay masked",
                masks=",".join(masked[:10]),
            )
        tasks = now.tasks
        blind = sorted(tid for tid, t in tasks.items() if redaction.is_redacted(t))
        if blind:
            log.warning(
                "tasks in force whose secret request values are not in this scheduler's file: "
                "they are sent masked; apply the configuration with this file",
                tasks=",".join(blind[:10]),
            )
        locations = sorted({loc for t in tasks.values() for loc in t.locations}) or ["default"]
        await streams.ensure(
            js, locations, work_tuning(self.opts.tuning, dispatched(tasks.values()))
        )
        await self.sealer.refresh(js, locations)
        by_group: dict[str, list[TaskDef]] = defaultdict(list)
        for task in tasks.values():
            if not is_push(task):
                by_group[task.group].append(task)
        every = dict(by_group)
        del by_group
        # Unsharded, this scheduler's groups are all of them: one table, not two.
        groups = (
            every
            if self.opts.shards == 1
            else {g: ts for g, ts in every.items() if shard_of(g, self.opts.shards) == self.shard}
        )
        self.sealer.hide(self.own.secrets, {t.url for group in groups.values() for t in group})
        now_s = time.time()
        if self.shard == 0:
            self.heartbeats.configure(
                [t for t in tasks.values() if is_push(t)], now_s, now.last_seq
            )
            self.every_group = every
        for gid in self.groups.keys() - groups.keys():
            self.plan.remove(gid)
            self.in_flight.pop(gid, None)
        for gid, group in groups.items():
            if gid not in self.plan and gid not in self.in_flight:
                self.plan.set(gid, spread(gid, min(t.frequency for t in group), now_s))
            # Each group's state made now, frozen with the tasks (``gc.freeze``): made at its
            # first request, 50,000 of them at 100,000 tasks were walked by every full pass of
            # the collector.
            self.group_states.setdefault(gid, GroupState())
        self.groups = groups
        self.wake.set()
        log.info(
            "configuration in force",
            tasks=len(tasks),
            groups=len(groups),
            revision=(now.revision or "")[:12],
        )

    async def _follow_config(self, js: JetStreamContext) -> None:
        """Notice a ``config.applied`` published by anyone (``tocsin config apply``, another
        scheduler's SIGHUP) and run what it says; keep the transient sealing keys."""
        while not self.stopping.is_set():
            await asyncio.sleep(CONFIG_POLL)
            try:
                if await last_applied_seq(js) != self.applied_seq:
                    await self._take_in_force(js)
                # A NATS restarted forgot the transient keys: seal to the ones put back.
                await self.sealer.refresh(js)
            except Exception as exc:
                if not streams.transient(exc):
                    raise
                log.warning("could not read the configuration in force", error=str(exc))

    async def _reloads(self, js: JetStreamContext) -> None:
        """SIGHUP: apply the file again, as ``tocsin config apply FILE`` would (sharded: the
        replica signalled applied it, every shard takes the file's settings and secret
        values)."""
        while not self.stopping.is_set():
            await self.reload_requested.wait()
            self.reload_requested.clear()
            try:
                cfg = configuration.parse(self.opts.config_path)
            except configuration.ConfigError as exc:
                log.error(
                    "configuration refused; the previous one stays in force", problems=str(exc)
                )
                continue
            self.own = cfg
            if self.opts.shards == 1:
                try:
                    await apply_config(js, cfg, self.opts.applied_by or who())
                except (TooLarge, Refused) as exc:
                    log.error(
                        "configuration refused; the previous one stays in force", problems=str(exc)
                    )
            await self._take_in_force(js)


async def main(opts: SchedulerOptions) -> None:
    scheduler = Scheduler(opts)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, scheduler.stop)
    loop.add_signal_handler(signal.SIGINT, scheduler.stop)
    loop.add_signal_handler(signal.SIGHUP, scheduler.request_reload)
    await scheduler.run()
