"""Check now: the scheduler in charge runs a task's request group at once when asked.

The web and ``tocsin check-now`` ask on a core NATS subject (``subjects.CHECK_NOW``); only
the scheduler holds the task definitions with their secrets (the log and the read models
show them redacted), so it builds the requests, as it does for its own runs.

A group runs at most once per ``every`` seconds, counted from the last "check now" request
of the group in the log (each location's on a subject of its own). The request is published
only if that subject's last sequence is still the one read (JetStream's compare-and-set,
``Nats-Expected-Last-Subject-Sequence``): of two schedulers answering at once (a handover),
or two presses at once, one publishes and the other answers "already queued". Fixed windows
(a message id per 30 s slot) let two presses half a second apart across a slot's edge both run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from checks import request
from events import codec, control, streams, subjects
from events.types import CheckRequested, TaskDef
from runtime.logs import Log
from security.sealing import Sealer

log = Log("tocsin.scheduler")

#: JetStream's error code when ``Nats-Expected-Last-Subject-Sequence`` no longer holds.
WRONG_LAST_SEQUENCE = 10071
PUSH_REFUSAL = "a heartbeat monitor is judged on its pings; nothing to run now"


class Refusal(msgspec.Struct, frozen=True):
    """Why nothing is run: ``unknown`` when the task or domain is not in force, ``refused``
    when it is but nothing of it is run by agents (a heartbeat monitor)."""

    reason: str
    unknown: bool = False
    refused: bool = False


def select(
    groups: dict[str, list[TaskDef]],
    pushed: Iterable[TaskDef],
    task: str | None,
    domain: str | None,
) -> list[list[TaskDef]] | Refusal:
    """The request groups to run for a task or a domain, or why there are none."""
    if task:
        found = [tasks for tasks in groups.values() if any(t.id == task for t in tasks)]
        if found:
            return found
        if any(t.id == task for t in pushed):
            return Refusal(PUSH_REFUSAL, refused=True)
        return Refusal(f"no task {task!r} in the configuration in force", unknown=True)
    if domain:
        found = [tasks for tasks in groups.values() if tasks[0].domain == domain]
        if found:
            return found
        if any(t.domain == domain for t in pushed):
            return Refusal(PUSH_REFUSAL, refused=True)
        return Refusal(f"no domain {domain!r} in the configuration in force", unknown=True)
    return Refusal("say which task or domain to check")


def due(last_at: float | None, now: float, every: float) -> bool:
    """Whether a press at ``now`` runs the group again, the last "check now" request having
    been asked at ``last_at`` (None: never). A press with a clock behind the last request's
    (another scheduler's) waits for it rather than run twice."""
    return last_at is None or now - last_at >= every


async def serve(
    nc: Client,
    js: JetStreamContext,
    groups: Callable[[], dict[str, list[TaskDef]]],
    pushed: Callable[[], Iterable[TaskDef]],
    sealer: Sealer,
    stopping: asyncio.Event,
    every: float,
) -> None:
    """Answer "check now" until ``stopping`` (or cancelled when the lease is lost)."""

    async def answer(msg: Msg) -> None:
        try:
            ask = control.decode_check_now(msg.data)
        except control.DecodeError as exc:
            reply = control.CheckNowAnswer(error=f"{subjects.CHECK_NOW}: {exc}")
        else:
            reply = await run_now(js, groups(), sealer, ask, every, time.time(), pushed())
        if not subjects.is_inbox(msg.reply or ""):
            # This scheduler may publish on subjects of the log: an answer handed one as the
            # reply subject would be kept as an event. Asked without a reply: nobody waits.
            if msg.reply:
                log.warning(
                    "check now not answered: its reply subject is no inbox", reply=msg.reply
                )
            return
        with contextlib.suppress(Exception):  # the asker gave up: nothing to tell
            await msg.respond(control.encode(reply))

    sub = await nc.subscribe(subjects.CHECK_NOW, cb=answer)
    try:
        await stopping.wait()
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def run_now(
    js: JetStreamContext,
    groups: dict[str, list[TaskDef]],
    sealer: Sealer,
    ask: control.CheckNow,
    every: float,
    now: float,
    pushed: Iterable[TaskDef] = (),
) -> control.CheckNowAnswer:
    selected = select(groups, pushed, ask.task, ask.domain)
    if isinstance(selected, Refusal):
        return control.CheckNowAnswer(
            error=selected.reason, unknown=selected.unknown, refused=selected.refused
        )
    try:
        asked = [
            await _ask(js, sealer, asked_for, every, now)
            for tasks in selected
            for asked_for in request.on_demand(tasks, now, ask.by)
        ]
    except codec.DecodeError as exc:
        # Who asks, and the request data of the configuration, make the request: one the
        # agents would refuse is the asker's answer, never a dead letter in the log.
        return control.CheckNowAnswer(error=f"the request cannot be sent: {exc}", refused=True)
    log.info("check now", by=ask.by, task=ask.task, domain=ask.domain, requests=len(asked))
    return control.CheckNowAnswer(requests=asked)


async def _ask(
    js: JetStreamContext, sealer: Sealer, asked_for: CheckRequested, every: float, now: float
) -> control.Asked:
    """Publish one location's request unless the last one is within ``every`` seconds."""
    group, location = asked_for.group, asked_for.location
    subject = subjects.requested_now(location, group)
    seq, last = await _last(js, subject)
    if last is not None and not due(last.at, now, every):
        return control.Asked(last.request, group, location, False)
    # Headers and bodies may hold secrets: only the location's agents can read them.
    event = sealer.seal(asked_for)
    data = codec.encode_admitted(event, subject)
    try:
        ack = await js.publish(
            subject,
            data,
            headers={
                "Nats-Msg-Id": request.message_id(event.request),
                "Nats-Expected-Last-Subject-Sequence": str(seq),
            },
            timeout=5,
        )
    except APIError as exc:
        if exc.err_code != WRONG_LAST_SEQUENCE:
            raise
        # Another press, or another scheduler, published first: that one is the run.
        _, last = await _last(js, subject)
        return control.Asked(last.request if last else event.request, group, location, False)
    return control.Asked(event.request, group, location, not ack.duplicate)


async def _last(js: JetStreamContext, subject: str) -> tuple[int, CheckRequested | None]:
    """The sequence of the last message on ``subject`` (0: none) and its request, if it is one."""
    try:
        raw = await js.get_last_msg(streams.EVENTS, subject)
    except NotFoundError:
        return 0, None
    try:
        ev = codec.decode(raw.data or b"", raw.subject or subject)
    except codec.DecodeError:
        return raw.seq or 0, None  # poison (the projector records it): no time to wait for
    return raw.seq or 0, ev if isinstance(ev, CheckRequested) else None
