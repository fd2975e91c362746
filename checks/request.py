"""Building the request of a request group: one place for the scheduler, ``check now`` and
``tocsin check``, so that each asks the agents the same question.

A request id says where it came from: ``<group>.<location>.<due ms>`` for the scheduler's
runs, ``<group>.<location>.now<ms>`` for an operator's "check now". The scheduler judges
both but moves its own schedule only for its own requests (``is_on_demand``).
"""

from __future__ import annotations

import asyncio
import time

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from events import control, subjects
from events.types import CheckRequested, CheckSpec, TaskDef

#: An operator's "check now" runs a request group at most once per this many seconds: the
#: scheduler compares the press with the last "check now" request in the log
#: (services/scheduler/ondemand.py).
ON_DEMAND_EVERY = 30.0
_ON_DEMAND = "now"


def give_up_after(tasks: list[TaskDef]) -> float:
    """Seconds without a result after which the scheduler gives a request of ``tasks`` up:
    twice their frequency, twice their timeout when that is longer. ``tocsin argos`` gives a
    request back to the queue within it, for another agent to answer in time."""
    return 2 * max(min(t.frequency for t in tasks), min(t.timeout for t in tasks))


def scheduled_id(group: str, location: str, due: float) -> str:
    return f"{group}.{location}.{int(due * 1000)}"


def on_demand_id(group: str, location: str, now: float) -> str:
    return f"{group}.{location}.{_ON_DEMAND}{int(now * 1000)}"


def is_on_demand(request: str) -> bool:
    return request.rsplit(".", 1)[-1].startswith(_ON_DEMAND)


def location_of(request: str) -> str:
    return request.split(".")[1] if request.count(".") >= 2 else "?"


def message_id(request: str) -> str:
    """The ``Nats-Msg-Id`` of a request: the same request published twice lands once."""
    return f"request.{request}"


def build(
    tasks: list[TaskDef],
    location: str,
    request: str,
    now: float,
    due: float,
    requested_by: str | None = None,
) -> CheckRequested:
    """The request for ``tasks`` (one request group) at one location, with its data in clear;
    the publisher seals it for the location when the deployment has location keys."""
    first = tasks[0]
    return CheckRequested(
        at=now,
        request=request,
        group=first.group,
        location=location,
        url=first.url,
        method=first.method,
        ip_version=first.ip_version,
        timeout=min(t.timeout for t in tasks),
        due=due,
        checks=[CheckSpec(t.id, t.check, t.expected) for t in tasks],
        request_data=first.request_data,
        requested_by=requested_by,
    )


def on_demand(tasks: list[TaskDef], now: float, requested_by: str) -> list[CheckRequested]:
    """An operator's "check now" of one request group: a request on every location of it."""
    return [
        build(tasks, loc, on_demand_id(tasks[0].group, loc, now), now, now, requested_by)
        for loc in tasks[0].locations
    ]


class CheckNowError(Exception):
    """Check now could not be asked or was refused; ``str()`` says why, for the operator.
    ``unknown``: no such task or domain in the configuration in force; ``refused``: in force,
    but nothing an agent runs (a heartbeat monitor)."""

    def __init__(self, message: str, unknown: bool = False, refused: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown
        self.refused = refused


#: How long "no responders" is waited out: a scheduler starting, or one taking over the
#: shards of a dead one (within one lease), subscribes a moment after the task shows.
NO_SCHEDULER_GRACE = 10.0
_RETRY_EVERY = 0.25


async def ask_now(
    nc: Client,
    ask: control.CheckNow,
    timeout: float = 10.0,
    grace: float = NO_SCHEDULER_GRACE,
) -> list[control.Asked]:
    """Ask the scheduler in charge to run now (see services/scheduler/ondemand.py).

    No responder is asked again for up to ``grace`` seconds before it is an error."""
    deadline = time.monotonic() + grace
    while True:
        try:
            msg = await nc.request(subjects.CHECK_NOW, control.encode(ask), timeout=timeout)
            break
        except NoRespondersError:
            if time.monotonic() >= deadline:
                raise CheckNowError(
                    f"no scheduler answered within {grace:g}s; is one running?"
                ) from None
            await asyncio.sleep(_RETRY_EVERY)
        except (TimeoutError, NatsTimeout):
            raise CheckNowError(f"the scheduler did not answer within {timeout:g}s") from None
    try:
        answer = control.decode_answer(msg.data)
    except control.DecodeError as exc:
        raise CheckNowError(f"the scheduler's answer is unreadable: {exc}") from None
    if answer.error:
        raise CheckNowError(answer.error, answer.unknown, answer.refused)
    return answer.requests
