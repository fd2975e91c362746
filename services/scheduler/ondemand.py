"""Check now: the scheduler in charge runs a task's request group at once when asked.

The web and ``tocsin check-now`` ask on a core NATS subject (``subjects.CHECK_NOW``); only
the scheduler holds the task definitions with their secrets (the log and the read models
show them redacted), so it builds the requests, as it does for its own runs. The request
ids carry a time slot: a second press within the slot publishes the same message id,
which JetStream records once, and the answer says it was not queued again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from checks import request
from events import codec, control, subjects
from events.types import TaskDef
from runtime.logs import Log
from security.sealing import Sealer

log = Log("tocsin.scheduler")


def select(
    groups: dict[str, list[TaskDef]], task: str | None, domain: str | None
) -> list[list[TaskDef]] | str:
    """The request groups to run for a task or a domain, or why there are none."""
    if task:
        found = [tasks for tasks in groups.values() if any(t.id == task for t in tasks)]
        return found or f"no task {task!r} in the configuration in force"
    if domain:
        found = [tasks for tasks in groups.values() if tasks[0].domain == domain]
        return found or f"no domain {domain!r} in the configuration in force"
    return "say which task or domain to check"


async def serve(
    nc: Client,
    js: JetStreamContext,
    groups: Callable[[], dict[str, list[TaskDef]]],
    sealer: Sealer,
    stopping: asyncio.Event,
    slot: float,
) -> None:
    """Answer "check now" until ``stopping`` (or cancelled when the lease is lost)."""

    async def answer(msg: Msg) -> None:
        try:
            ask = control.decode_check_now(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            reply = control.CheckNowAnswer(error=f"{subjects.CHECK_NOW}: {exc}")
        else:
            reply = await run_now(js, groups(), sealer, ask, slot)
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
    slot: float,
) -> control.CheckNowAnswer:
    selected = select(groups, ask.task, ask.domain)
    if isinstance(selected, str):
        return control.CheckNowAnswer(error=selected, unknown=bool(ask.task or ask.domain))
    asked = []
    now = time.time()
    for tasks in selected:
        for asked_for in request.on_demand(tasks, now, ask.by, slot):
            # Headers and bodies may hold secrets: only the location's agents can read them.
            event = sealer.seal(asked_for)
            ack = await js.publish(
                subjects.requested_now(event.location, event.group),
                codec.encode(event),
                headers={"Nats-Msg-Id": request.message_id(event.request)},
                timeout=5,
            )
            asked.append(
                control.Asked(event.request, event.group, event.location, not ack.duplicate)
            )
    log.info("check now", by=ask.by, task=ask.task, domain=ask.domain, requests=len(asked))
    return control.CheckNowAnswer(requests=asked)
