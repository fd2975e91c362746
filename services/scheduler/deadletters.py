"""Dead letters: JetStream's max-deliveries advisories become ``deadletter`` events, the
group's tasks are judged unknown with the reason, and the group is tried again later."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from checks import request
from checks.judge import no_result
from events import codec, streams, subjects
from events.types import DeadLettered
from runtime import bus
from services.scheduler.state import PUBLISH_ACK_WAIT, SchedulerState, log

#: Seconds a deletion from WORK is waited for: refused (the identity of an older
#: deployment's permissions), it never answers, and each wait held up every dead letter
#: behind it.
DELETE_WAIT = 1.0


def in_force(
    requests: dict[tuple[str, str], str | None],
    answered: set[str | None],
    location: str | None,
    group: str | None,
    rid: str | None,
) -> bool:
    """Whether a dead-lettered request is the one its group waits for: a later one sent (this
    one given up, its group run again) or an answer judged, it says nothing of the group now.
    A "check now" request never is (the schedule does not wait for it)."""
    if not (rid and location and group) or request.is_on_demand(rid):
        return False
    return requests.get((location, group)) == rid and rid not in answered


class DeadLettering(SchedulerState):
    #: False once a deletion from WORK failed this term: WORK's max_age removes them then.
    deleting = True

    async def _remove_from_work(self, js: JetStreamContext, work_seq: int) -> None:
        """A work queue keeps a message no agent acked: remove it, it is recorded as a dead
        letter. Tried until one fails (then said once), never at the cost of the others."""
        if not self.deleting:
            return
        try:
            await asyncio.wait_for(js.delete_msg(streams.WORK, work_seq), DELETE_WAIT)
        except NotFoundError:
            pass  # gone already (WORK's max_age)
        except Exception as exc:
            self.deleting = False
            log.warning(
                "dead-lettered requests cannot be deleted from WORK; its max_age removes them",
                error=str(exc) or type(exc).__name__,
            )

    async def _dead_letters(self, js: JetStreamContext) -> None:
        """Max-deliveries advisories → deadletter events; the group is tried again later."""
        self.deleting = True
        sub = await js.pull_subscribe_bind(
            durable=streams.SCHEDULER_ADVISORIES, stream=streams.ADVISORIES
        )
        puller = bus.Puller(sub, "max-deliveries advisories")
        try:
            while not self.stopping.is_set():
                msgs = await puller.fetch(100)
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
        group = rid = location = None
        subject = "?"
        excerpt = ""
        try:
            raw = await js.get_msg(streams.WORK, work_seq)
            subject, excerpt = raw.subject, codec.excerpt(raw.data or b"")
            ev = codec.decode(raw.data or b"", raw.subject)
            group = getattr(ev, "group", None)
            rid = getattr(ev, "request", None)
            location = getattr(ev, "location", None)
            await self._remove_from_work(js, work_seq)
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
            request=rid,
            deliveries=n if isinstance(n := advisory.get("deliveries"), int) else None,
        )
        await bus.publish_until_acked(
            js,
            subjects.deadletter("max_deliver"),
            codec.encode(event),
            f"deadletter.max_deliver.{work_seq}",
            ack_wait=PUBLISH_ACK_WAIT,
        )
        log.warning("request dead-lettered", subject=subject, work_seq=work_seq)
        tasks = self.groups.get(group) if group else None
        if tasks and in_force(self.requests, self.answered, location, group, rid):
            # Never a silent retry: the operator sees the tasks unknown, and why.
            self.in_flight.pop(tasks[0].group, None)
            now = time.time()
            verdict = no_result(
                tasks,
                self.task_states,
                now,
                f"dead-lettered: {event.reason}",
                next_run=now + min(t.frequency for t in tasks),
            )
            await self._publish_judged(js, verdict, f"judged.deadletter.{work_seq}")
