"""The scheduler: configuration → check requests, and completions → judgements.

It restores what it needs from the log at start (the task set in force, the
last judgement of every group), so it keeps no state of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from checks.judge import GroupState, TaskState, apply, judge, no_result
from configuration import config as configuration
from configuration.inforce import apply_config, who
from events import codec, streams, subjects
from events.types import (
    CheckCompleted,
    CheckRequested,
    CheckSpec,
    DeadLettered,
    TaskDef,
    TaskJudged,
)
from runtime import bus
from runtime.logs import Log
from security.sealing import Sealer
from services.scheduler.leader import Lease
from services.scheduler.plan import Plan, spread
from services.scheduler.quorum import LocationMemory, configured

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
    #: Where ``locations/<loc>.pub`` keys are: request secrets are sealed for those locations.
    security_dir: str | None = field(default_factory=lambda: os.environ.get("TOCSIN_SECURITY_DIR"))


class Scheduler:
    def __init__(self, opts: SchedulerOptions) -> None:
        self.opts = opts
        self.config: configuration.Config | None = None
        self.groups: dict[str, list[TaskDef]] = {}
        self.task_states: dict[str, TaskState] = {}
        self.group_states: dict[str, GroupState] = defaultdict(GroupState)
        self.plan = Plan()
        self.in_flight: dict[str, float] = {}  # group → due time of its outstanding request
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self.sealer = Sealer.from_dir(opts.security_dir)
        self.by_location = LocationMemory()  # each location's latest severities, for the quorum
        self._background: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def request_reload(self) -> None:
        self.reload_requested.set()

    async def run(self) -> None:
        first = configuration.parse(self.opts.config_path)  # refuse to start on a bad file
        nc = await bus.connect(self.opts.nats_url, "scheduler")
        js = nc.jetstream()
        try:
            await streams.ensure_retrying(js, first.locations, self.opts.tuning, self.stopping)
            # Standby → active → (lease lost) → standby …: a scheduler that lost its lease (NATS
            # away longer than the TTL, or a stall) stops dispatching and competes for it again
            # in-process, instead of exiting and leaving the system without a scheduler.
            while not self.stopping.is_set():
                lease = Lease(js, self.opts.lease_ttl, self.opts.tuning.replicas)
                if not await self._until_held(lease):
                    return
                try:
                    await self._lead(js, lease, self.config or first)
                finally:
                    await lease.release()
                if not self.stopping.is_set():
                    log.warning(
                        "scheduler back to standby; its state is restored from the log "
                        "when it holds the lease again"
                    )
                    self._forget()
        finally:
            await bus.close(nc)

    async def _until_held(self, lease: Lease) -> bool:
        """Wait for the lease; False when asked to stop first."""
        waiting = asyncio.create_task(lease.acquire())
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({waiting, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if waiting.done():
            return True
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        return False

    async def _lead(self, js, lease: Lease, cfg: configuration.Config) -> None:  # type: ignore[no-untyped-def]
        """Dispatch and judge while the lease is held; return once it is lost or on stop."""
        keep = asyncio.create_task(lease.keep())
        tasks: list[asyncio.Task[None]] = []
        try:
            try:
                await self._apply(js, cfg)
                await self._restore(js)
            except Exception as exc:
                # NATS away while we read the log: give the lease back and start over.
                log.warning("could not take over; back to standby", error=str(exc))
                await asyncio.sleep(1)
                return
            tasks = [
                asyncio.create_task(self._dispatch(js)),
                asyncio.create_task(self._judge_completions(js)),
                asyncio.create_task(self._dead_letters(js)),
                asyncio.create_task(self._reloads(js)),
            ]
            stop = asyncio.create_task(self.stopping.wait())
            lost = asyncio.create_task(lease.lost.wait())
            await asyncio.wait({stop, lost, keep, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            lost.cancel()
        finally:
            everything = [keep, *tasks, *self._background]
            for t in everything:
                t.cancel()
            results = await asyncio.gather(*everything, return_exceptions=True)
        # A loop that died is a bug: exit non-zero so a supervisor restarts us.
        for result in results:
            if isinstance(result, Exception):
                log.error("scheduler loop failed", error=repr(result))
                raise result

    def _forget(self) -> None:
        """Drop what the last term as leader knew: another scheduler may have dispatched and
        judged since, and ``_restore`` reads the truth from the log on the next term."""
        self.groups, self.task_states = {}, {}
        self.group_states = defaultdict(GroupState)
        self.plan, self.in_flight = Plan(), {}
        self.by_location = LocationMemory()

    @staticmethod
    async def _publish_async(js, subject: str, data: bytes, msg_id: str):  # type: ignore[no-untyped-def]
        """``publish_async``, or None when it could not even be sent (reconnect buffer full)."""
        try:
            return await js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id})
        except Exception:
            return None

    @staticmethod
    async def _acked(fut) -> None:  # type: ignore[no-untyped-def]
        """Wait for the ack of a ``publish_async``, at most ``PUBLISH_ACK_WAIT``.

        nats-py's futures have no timeout of their own: a publish in flight when the server
        went away (or whose ack was lost) is never answered, and awaiting its future blocked the
        dispatch loop forever after NATS came back, with every service connected and no new
        request. ``wait_for`` also cancels the future, which frees its slot of nats-py's
        pending-publish semaphore (otherwise leaked too).
        """
        if fut is None:
            raise ConnectionError("not sent")
        await asyncio.wait_for(fut, PUBLISH_ACK_WAIT)

    # configuration ---------------------------------------------------------------

    async def _apply(self, js, cfg: configuration.Config) -> None:  # type: ignore[no-untyped-def]
        await streams.ensure(js, cfg.locations, self.opts.tuning)
        await apply_config(js, cfg, self.opts.applied_by or who())
        self.config = cfg
        groups: dict[str, list[TaskDef]] = defaultdict(list)
        for task in cfg.tasks.values():
            groups[task.group].append(task)
        now = time.time()
        for gid in self.groups.keys() - groups.keys():
            self.plan.remove(gid)
            self.in_flight.pop(gid, None)
        for gid, tasks in groups.items():
            if gid not in self.plan and gid not in self.in_flight:
                self.plan.set(gid, spread(gid, min(t.frequency for t in tasks), now))
        self.groups = dict(groups)
        self.wake.set()
        log.info("configuration in force", tasks=len(cfg.tasks), groups=len(groups))

    async def _reloads(self, js) -> None:  # type: ignore[no-untyped-def]
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
            await self._apply(js, cfg)

    async def _restore(self, js) -> None:  # type: ignore[no-untyped-def]
        """Pick up each group's schedule and each task's severity from the last judgements."""
        now = time.time()
        async for msg in bus.replay(js, subjects.JUDGED_ALL, last_per_subject=True):
            try:
                ev = codec.decode(msg.data, msg.subject)
            except codec.DecodeError:
                continue
            if not isinstance(ev, TaskJudged) or ev.group not in self.groups:
                continue
            apply(self.task_states, ev)
            self.by_location.remember(ev)
            gs = self.group_states[ev.group]
            gs.last_completion, gs.recheck = ev.completion, ev.recheck
            tasks = self.groups[ev.group]
            due = ev.next_run
            if due < now:  # overdue after a stop: spread, not all at once
                due = spread(ev.group, min(min(t.frequency for t in tasks), 60.0), now)
            self.plan.set(ev.group, due)
        self.wake.set()

    # dispatching -----------------------------------------------------------------

    async def _dispatch(self, js) -> None:  # type: ignore[no-untyped-def]
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

    async def _request(self, js, due: list[tuple[str, float]]) -> None:  # type: ignore[no-untyped-def]
        pending = []
        now = time.time()
        for gid, when in due:
            tasks = self.groups.get(gid)
            if not tasks:
                continue
            first = tasks[0]
            for location in first.locations:
                request = f"{gid}.{location}.{int(when * 1000)}"
                event = CheckRequested(
                    at=now,
                    request=request,
                    group=gid,
                    location=location,
                    url=first.url,
                    method=first.method,
                    ip_version=first.ip_version,
                    timeout=min(t.timeout for t in tasks),
                    due=when,
                    checks=[CheckSpec(t.id, t.check, t.expected) for t in tasks],
                    request_data=first.request_data,
                )
                # Headers and bodies may hold secrets: only the location's agents can read them.
                clear, sealed = self.sealer.seal(location, first.request_data)
                event.request_data, event.sealed = clear, sealed
                subject, data = subjects.requested(location, gid), codec.encode(event)
                msg_id = f"request.{request}"
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

    def _expire_overdue(self, js, now: float) -> None:  # type: ignore[no-untyped-def]
        """A request with no result for twice its frequency: the group becomes unknown."""
        for gid, when in list(self.in_flight.items()):
            tasks = self.groups.get(gid)
            if tasks is None:
                self.in_flight.pop(gid)
                continue
            limit = max(
                2 * min(t.frequency for t in tasks),
                self.opts.tuning.ack_wait * self.opts.tuning.max_deliver,
            )
            if now - when > limit:
                self.in_flight.pop(gid)
                verdict = no_result(tasks, self.task_states, now, now - when)
                msg_id = f"judged.noresult.{gid}.{int(when * 1000)}"
                task = asyncio.create_task(self._publish_judged(js, verdict, msg_id))
                self._background.add(task)  # keep a reference until it is done
                task.add_done_callback(self._background.discard)

    async def _publish_judged(self, js, verdict: TaskJudged, msg_id: str) -> None:  # type: ignore[no-untyped-def]
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

    # judging ---------------------------------------------------------------------

    async def _judge_completions(self, js) -> None:  # type: ignore[no-untyped-def]
        sub = await js.pull_subscribe_bind(
            durable=streams.SCHEDULER_COMPLETIONS, stream=streams.EVENTS
        )
        try:
            while not self.stopping.is_set():
                try:
                    msgs = await sub.fetch(500, timeout=1.0)
                except (TimeoutError, NatsTimeout):
                    continue
                except Exception as exc:
                    log.warning("fetch of completions failed", error=str(exc))
                    await asyncio.sleep(0.5)
                    continue
                if msgs:  # fetch can return nothing without raising its timeout
                    await self._judge_batch(js, msgs)
        finally:
            # A new term as leader binds again: no subscription left behind.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _judge_batch(self, js, msgs: list[Msg]) -> None:  # type: ignore[no-untyped-def]
        assert self.config is not None
        futures = []  # (publish future, subject, data, message id)
        verdicts = []
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            try:
                ev = codec.decode(msg.data, msg.subject)
                if not isinstance(ev, CheckCompleted):
                    raise codec.DecodeError(f"{msg.subject}: not a check.completed event")
            except codec.DecodeError as exc:
                subject, data, headers = bus.deadletter_for(
                    msg.data,
                    streams.EVENTS,
                    seq,
                    msg.subject,
                    streams.SCHEDULER_COMPLETIONS,
                    str(exc),
                    time.time(),
                )
                msg_id = headers["Nats-Msg-Id"]
                futures.append(
                    (await self._publish_async(js, subject, data, msg_id), subject, data, msg_id)
                )
                continue
            tasks = self.groups.get(ev.group)
            gs = self.group_states[ev.group]
            if not tasks or seq <= gs.last_completion:
                continue  # removed from the configuration, or judged before a restart
            verdict = judge(tasks, self.task_states, gs, ev, seq, self.config.ssl_thresholds)
            verdict = self.by_location.combine(
                tasks,
                self.task_states,
                ev.location,
                verdict,
                configured(self.config.websites, self.config.general, tasks[0].domain),
            )
            apply(self.task_states, verdict)
            gs.last_completion, gs.recheck = seq, verdict.recheck
            self.in_flight.pop(ev.group, None)
            self.plan.set(ev.group, verdict.next_run)
            verdicts.append(verdict)
            subject, data = subjects.judged(ev.group), codec.encode(verdict)
            msg_id = f"judged.{seq}"
            futures.append(
                (await self._publish_async(js, subject, data, msg_id), subject, data, msg_id)
            )
        # Ack (all up to the last) only once every verdict is in the log. The verdicts are
        # applied in memory already (a redelivery would be skipped as judged), so one that
        # failed to land (NATS away) is published again until it does, never dropped.
        for fut, subject, data, msg_id in futures:
            try:
                await self._acked(fut)
            except Exception:
                await bus.publish_until_acked(js, subject, data, msg_id, ack_wait=PUBLISH_ACK_WAIT)
        self.wake.set()
        # A lost ack (NATS away) means a redelivery, skipped above as judged already.
        with contextlib.suppress(Exception):
            await msgs[-1].ack()

    async def _dead_letters(self, js) -> None:  # type: ignore[no-untyped-def]
        """Max-deliveries advisories → deadletter events; the group is tried again later."""
        sub = await js.pull_subscribe_bind(
            durable=streams.SCHEDULER_ADVISORIES, stream=streams.ADVISORIES
        )
        import json

        try:
            while not self.stopping.is_set():
                try:
                    msgs = await sub.fetch(100, timeout=1.0)
                except (TimeoutError, NatsTimeout):
                    continue
                except Exception:
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    try:
                        advisory = json.loads(msg.data)
                        work_seq = int(advisory["stream_seq"])
                    except (ValueError, KeyError, TypeError) as exc:
                        # Not an advisory JetStream wrote: recorded like any undecodable
                        # message, never dropped silently.
                        subject, data, headers = bus.deadletter_for(
                            msg.data,
                            streams.ADVISORIES,
                            msg.metadata.sequence.stream,
                            msg.subject,
                            streams.SCHEDULER_ADVISORIES,
                            f"not a max-deliveries advisory: {exc}",
                            time.time(),
                        )
                        await bus.publish_until_acked(
                            js, subject, data, headers["Nats-Msg-Id"], ack_wait=PUBLISH_ACK_WAIT
                        )
                        with contextlib.suppress(Exception):  # redelivered: lands once (msg id)
                            await msg.ack()
                        continue
                    await self._dead_letter_request(js, work_seq, advisory)
                    with contextlib.suppress(Exception):  # redelivered: lands once (msg id)
                        await msg.ack()
        finally:
            # A new term as leader binds again: no subscription left behind.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _dead_letter_request(self, js, work_seq: int, advisory: dict) -> None:  # type: ignore[no-untyped-def, type-arg]
        group = None
        subject = "?"
        excerpt = ""
        try:
            raw = await js.get_msg(streams.WORK, work_seq)
            subject, excerpt = raw.subject, codec.excerpt(raw.data or b"")
            ev = codec.decode(raw.data or b"", raw.subject)
            group = getattr(ev, "group", None)
            # A work-queue stream keeps an unacked message: remove it, it is recorded below.
            with contextlib.suppress(Exception):
                await js.delete_msg(streams.WORK, work_seq)
        except Exception:
            pass
        event = DeadLettered(
            at=time.time(),
            kind="max_deliver",
            stream=streams.WORK,
            seq=work_seq,
            subject=subject,
            consumer=str(advisory.get("consumer", "?")),
            reason=f"no agent completed it in {advisory.get('deliveries', '?')} deliveries",
            excerpt=excerpt,
            group=group,
        )
        await bus.publish_until_acked(
            js,
            subjects.deadletter("max_deliver"),
            codec.encode(event),
            f"deadletter.max_deliver.{work_seq}",
            ack_wait=PUBLISH_ACK_WAIT,
        )
        log.warning("request dead-lettered", subject=subject, work_seq=work_seq)
        if group and group in self.groups:
            self.in_flight.pop(group, None)
            self.plan.set(group, time.time() + min(t.frequency for t in self.groups[group]))
            self.wake.set()


async def main(opts: SchedulerOptions) -> None:
    scheduler = Scheduler(opts)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, scheduler.stop)
    loop.add_signal_handler(signal.SIGINT, scheduler.stop)
    loop.add_signal_handler(signal.SIGHUP, scheduler.request_reload)
    await scheduler.run()
