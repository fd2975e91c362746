"""Judging: completions from the log become verdicts (``task.judged``)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from checks.judge import apply, judge
from events import codec, streams, subjects
from events.types import CheckCompleted
from runtime import bus
from services.scheduler.quorum import configured
from services.scheduler.state import PUBLISH_ACK_WAIT, SchedulerState, log


class Judging(SchedulerState):
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
