"""Streams and consumers: their definitions live here and nowhere else.

``EVENTS`` is the append-only log (the single source of truth). ``WORK`` is a
work queue sourcing the check requests from ``EVENTS``: one durable pull
consumer per agent location, so each request goes to one agent of each
location, and comes back to another one if that agent dies. ``ADVISORIES``
captures JetStream's max-deliveries advisories so that a request nobody could
complete becomes a ``deadletter`` event even if the scheduler was down when
it happened.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError

from events import subjects

# Plain stdlib logging: the contract imports nothing else of the project; the services' log
# setup formats these records like their own.
log = logging.getLogger("tocsin.streams")

EVENTS = "EVENTS"
WORK = "WORK"
ADVISORIES = "ADVISORIES"

PROJECTOR = "projector"
SCHEDULER_COMPLETIONS = "scheduler-completions"
#: Most shards a sharded scheduler may use: each shard past the first has a completions
#: consumer of its own, and the scheduler's NATS permissions name each of them.
MAX_SHARDS = 64
SCHEDULER_ADVISORIES = "scheduler-advisories"
NOTIFIER = "notifier"

#: JetStream's error code for "stream name already in use with a different configuration".
STREAM_NAME_IN_USE = 10058
#: JetStream errors that pass by themselves: a cluster just formed ("insufficient resources"
#: until the meta leader heard from every peer; no suitable peers; cluster not active/available).
TRANSIENT_CODES = {10005, 10006, 10008, 10023}

MAX_DELIVERIES_ADVISORY = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{WORK}.*"


@dataclass(frozen=True)
class Tuning:
    """What an operator may want to change per deployment."""

    replicas: int = 1
    duplicate_window: float = 120.0
    ack_wait: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 20_000
    #: Seconds WORK keeps a request (0: for ever); the scheduler sets it from the tasks in
    #: force (``services/scheduler/plan.work_tuning``).
    work_max_age: float = 0.0


def events_stream(t: Tuning) -> StreamConfig:
    return StreamConfig(
        name=EVENTS,
        description="Tocsin event log: every fact, append-only",
        subjects=[subjects.ALL],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=t.replicas,
        duplicate_window=t.duplicate_window,
        deny_delete=True,
        deny_purge=True,
        allow_direct=True,
    )


def work_stream(t: Tuning) -> StreamConfig:
    return StreamConfig(
        name=WORK,
        description="Check requests waiting for an agent (work queue sourced from EVENTS)",
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=t.replicas,
        sources=[StreamSource(name=EVENTS, filter_subject=subjects.REQUESTED_ALL)],
        max_age=t.work_max_age,
    )


def advisories_stream(t: Tuning) -> StreamConfig:
    return StreamConfig(
        name=ADVISORIES,
        description="JetStream max-deliveries advisories of the WORK stream",
        subjects=[MAX_DELIVERIES_ADVISORY],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=t.replicas,
        max_age=7 * 86400,
    )


def agent_consumer_name(location: str) -> str:
    return f"agents-{subjects.check_token(location, 'location')}"


def agent_consumer(location: str, t: Tuning) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=agent_consumer_name(location),
        description=f"Agents of location {location}",
        filter_subject=subjects.requested_for_location(location),
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=t.ack_wait,
        max_deliver=t.max_deliver,
        max_ack_pending=t.max_ack_pending,
        max_waiting=512,
    )


def projector_consumer(t: Tuning) -> ConsumerConfig:
    # AckAll: the projector acks the last message of a batch after its commit.
    return ConsumerConfig(
        durable_name=PROJECTOR,
        description="Projector: folds EVENTS into PostgreSQL",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.ALL,
        ack_wait=t.ack_wait,
        max_ack_pending=t.max_ack_pending,
    )


def completions_durable(shard: int) -> str:
    """The completions consumer of one scheduler shard (shard 0: the unsharded one's)."""
    return SCHEDULER_COMPLETIONS if shard == 0 else f"{SCHEDULER_COMPLETIONS}-{shard}"


def scheduler_completions_consumer(t: Tuning, shard: int = 0) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=completions_durable(shard),
        description="Scheduler: judges check completions",
        filter_subject=subjects.COMPLETED_ALL,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.ALL,
        ack_wait=t.ack_wait,
        max_ack_pending=t.max_ack_pending,
    )


def scheduler_advisories_consumer(t: Tuning) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=SCHEDULER_ADVISORIES,
        description="Scheduler: turns max-deliveries advisories into deadletter events",
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=t.ack_wait,
    )


def notifier_consumer(t: Tuning) -> ConsumerConfig:
    # NEW, not ALL: a notifier added to a long-running deployment must not alert on history.
    # Explicit acks, each after the notifier recorded its decisions in PostgreSQL.
    return ConsumerConfig(
        durable_name=NOTIFIER,
        description="Notifier: turns judgements into notifications",
        filter_subject=subjects.JUDGED_ALL,
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=min(t.ack_wait, 10.0),
        max_ack_pending=t.max_ack_pending,
    )


def kept(ours: StreamConfig, found: StreamConfig) -> StreamConfig:
    """``ours`` with what it leaves unset taken from the stream as ``found``: the operator's
    limits (``max_age``, ``max_bytes``, ``max_msgs`` of EVENTS: docs/scaling.md), placement,
    compression… An update sends every field, and an unset one means the server's default:
    each scheduler start put EVENTS back to keeping everything for ever."""
    unset = {
        f.name: getattr(found, f.name)
        for f in dataclasses.fields(ours)
        if getattr(ours, f.name) is None and getattr(found, f.name) is not None
    }
    return dataclasses.replace(ours, **unset)


async def _ensure_stream(js: JetStreamContext, config: StreamConfig, update: bool) -> None:
    assert config.name is not None
    try:
        found = (await js.stream_info(config.name)).config
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError as exc:
            # Another service created it between our look and our add (they start together).
            if exc.err_code != STREAM_NAME_IN_USE:
                raise
        found = (await js.stream_info(config.name)).config
    if update:
        await js.update_stream(kept(config, found))


async def _ensure_consumer(
    js: JetStreamContext, stream: str, config: ConsumerConfig, update: bool
) -> None:
    if not update:
        assert config.durable_name is not None
        try:
            await js.consumer_info(stream, config.durable_name)
            return
        except NotFoundError:
            pass
    await js.add_consumer(stream, config)


async def ensure(js: JetStreamContext, locations: list[str], t: Tuning | None = None) -> None:
    """Create or update every stream and consumer; safe to call from any service, any time.

    Without ``t`` (a service that does not own the deployment's tuning, like the
    projector), only what is missing is created: updating with default tuning would
    silently turn R3 streams back into R1 and reset the operator's ack_wait.
    """
    update = t is not None
    t = t or Tuning()
    await _ensure_stream(js, events_stream(t), update)
    await _ensure_stream(js, work_stream(t), update)
    await _ensure_stream(js, advisories_stream(t), update)
    await _ensure_consumer(js, EVENTS, projector_consumer(t), update)
    await _ensure_consumer(js, EVENTS, scheduler_completions_consumer(t), update)
    await _ensure_consumer(js, ADVISORIES, scheduler_advisories_consumer(t), update)
    await _ensure_consumer(js, EVENTS, notifier_consumer(t), update)
    for location in locations:
        await _ensure_consumer(js, WORK, agent_consumer(location, t), update)


async def ensure_shards(js: JetStreamContext, shards: int, t: Tuning) -> None:
    """The completions consumers of scheduler shards 1 … ``shards`` - 1 (0 is ``ensure``'s)."""
    for shard in range(1, shards):
        await _ensure_consumer(js, EVENTS, scheduler_completions_consumer(t, shard), True)


def transient(exc: BaseException) -> bool:
    """True for an error that waiting cures: NATS away, JetStream electing or still forming."""
    if isinstance(
        exc,
        (
            ServiceUnavailableError,
            NoRespondersError,
            NatsTimeout,
            TimeoutError,
            ConnectionError,
            OSError,
        ),
    ):
        return True
    return isinstance(exc, APIError) and exc.err_code in TRANSIENT_CODES


async def retrying(
    what: str, attempt: Callable[[], Awaitable[object]], stopping: asyncio.Event | None = None
) -> bool:
    """Run ``attempt()`` until it succeeds, pausing with backoff after a transient error (logged
    once, then again only if it changes). False when ``stopping`` was set first."""
    delay, said = 0.25, ""
    while stopping is None or not stopping.is_set():
        try:
            await attempt()
            if said:
                log.info("%s: done", what)
            return True
        except Exception as exc:
            if not transient(exc):
                raise
            reason = f"{type(exc).__name__}: {exc}"
            if reason != said:
                log.warning(
                    "%s: not possible yet, retrying", what, extra={"fields": {"error": reason}}
                )
                said = reason
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # pacing, not cryptography
        delay = min(delay * 2, 5.0)
    return False


async def ensure_retrying(
    js: JetStreamContext, locations: list[str], t: Tuning, stopping: asyncio.Event | None = None
) -> bool:
    """``ensure`` (create or update everything with the operator's tuning), retried with
    backoff while JetStream cannot do it yet, instead of failing the service's start: right
    after a cluster forms it answers "insufficient resources" for a few seconds."""
    return await retrying(
        "creating streams and consumers", lambda: ensure(js, locations, t), stopping
    )


async def wait_for_stream(
    js: JetStreamContext,
    stream: str,
    own: ConsumerConfig | None = None,
    stopping: asyncio.Event | None = None,
) -> bool:
    """Wait until ``stream`` exists, then create ``own`` (this service's durable consumer) if
    it is missing. Streams are never created here: the scheduler creates them with the
    operator's tuning (replicas, windows); a service creating them first would pin defaults
    (R1 on a cluster). False when ``stopping`` was set first."""

    async def attempt() -> None:
        try:
            await js.stream_info(stream)
        except NotFoundError as exc:
            raise _NotYet(f"stream {stream} does not exist yet; is the scheduler running?") from exc
        if own is not None:
            await _ensure_consumer(js, stream, own, update=False)

    return await retrying(f"waiting for stream {stream}", attempt, stopping)


class _NotYet(ConnectionError):
    """Something another service creates is not there yet (transient: it will be)."""
