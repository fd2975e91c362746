"""Connecting to NATS the way every service must, never giving up on reconnecting, and the way
a one-shot command must, giving up after a few seconds with one line saying why."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Generic, Protocol, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import AuthorizationError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, PubAck
from nats.js.errors import ServiceUnavailableError

from events import codec, subjects
from events.streams import EVENTS
from events.types import DeadLettered
from runtime import backoff
from runtime.logs import Log
from runtime.pull import Pull
from runtime.reach import Unreachable, most_telling, reason, shown
from runtime.waiting import unless_stopped, within
from security.client import ClientSecurity

log = Log("tocsin.bus")

#: What a service logs, once, when NATS refuses its credentials (still retried).
REFUSED = "NATS refused this service's credentials (TOCSIN_NATS_CREDS): retrying"


def refused(exc: BaseException) -> bool:
    """Whether NATS refused the credentials: nats-py raises a plain Error with the server's
    text while connecting, an AuthorizationError once connected."""
    return isinstance(exc, AuthorizationError) or "authorization violation" in str(exc).lower()


#: Seconds one attempt at the start may take (connect, TLS, the server's answer to CONNECT):
#: nats-py can wait for ever on a TLS handshake that failed (nats.py issue 718).
START_ATTEMPT = 10.0


async def connect(
    url: str, name: str, stopping: asyncio.Event | None = None, **options: object
) -> Client:
    """A client that reconnects forever (nats-py's default gives up after ~2 minutes).

    Until it first reaches NATS it tries again with the reconnects' backoff (0.25 s doubling
    to 10 s), one line per failed attempt saying why (refused, authorization, certificate),
    where nats-py retries every second without end, deaf to a stop; ``stopping`` set ends
    the wait with ``Stopped``."""
    # Credentials and TLS from the environment (TOCSIN_NATS_CREDS, …) unless given explicitly:
    # every service joins an authorized bus with no code of its own.
    options = {**ClientSecurity.from_env().connect_options(), **options}
    failed = 0
    while True:
        why = await unless_stopped(_first_contact(url, name, options), stopping)
        if why is None:
            break
        failed += 1
        pause = backoff.delay(failed)
        # A refusal of the credentials is said as such first; then each attempt, as any other.
        say = log.error if failed == 1 and "authorization violation" in why.lower() else log.warning
        say(
            REFUSED if say == log.error else "cannot reach NATS yet",
            client=name,
            error=why,
            attempts=failed,
            retry_in=round(pause, 1),
        )
        await unless_stopped(asyncio.sleep(pause), stopping)
    return await unless_stopped(_reconnecting(url, name, options), stopping)


async def _first_contact(url: str, name: str, options: dict[str, object]) -> str | None:
    """None once NATS at ``url`` took us (the connection closed again); else why not."""
    nc = Client()
    failures: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        failures.append(exc)

    try:
        await within(
            nc.connect(
                servers=url.split(","),
                name=name,
                allow_reconnect=False,
                connect_timeout=5,
                error_cb=on_error,
                **options,  # type: ignore[arg-type]
            ),
            START_ATTEMPT,
        )
    except Exception as exc:
        return reason(failures[-1] if failures else exc)
    finally:
        with contextlib.suppress(Exception):
            await within(nc.close(), 2)
    return None


async def _reconnecting(url: str, name: str, options: dict[str, object]) -> Client:
    nc = Client()
    said = ""

    async def on_error(exc: Exception) -> None:
        # Once per kind of error until connected again: nats-py retries each second for ever,
        # and a refused credential is refused each time.
        nonlocal said
        if str(exc) == said:
            return
        said = str(exc)
        if refused(exc):
            log.error(REFUSED, client=name, error=str(exc))
        else:
            log.warning("nats error", client=name, error=str(exc))

    async def on_disconnect() -> None:
        # nats-py calls it on close() too: a client closed on purpose lost nothing.
        if not nc.is_closed:
            log.warning("nats disconnected", client=name)

    async def on_reconnect() -> None:
        nonlocal said
        said = ""
        log.warning("nats reconnected", client=name)

    await nc.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        reconnect_to_server_handler=backoff.handler,
        allow_reconnect=True,
        connect_timeout=5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        **options,  # type: ignore[arg-type]
    )
    return nc


#: A one-shot command's tries at reaching NATS after the first, a second apart, each given
#: ``ONESHOT_TIMEOUT`` seconds, before it says it cannot: a few seconds in all.
ONESHOT_ATTEMPTS = 2
ONESHOT_TIMEOUT = 2


@contextlib.asynccontextmanager
async def oneshot(url: str, name: str) -> AsyncIterator[Client]:
    """A connection for a command that does one thing and exits (``tocsin silence list``):
    a few attempts, then ``Unreachable`` ("cannot reach NATS at URL: connection refused")
    instead of ``connect``'s retrying forever, one warning a second; the same when the link
    is lost for good while the block runs. Closed when the block ends."""
    nc = Client()
    failures: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        failures.append(exc)  # said once, with the outcome, rather than once per attempt

    try:
        # Bounded as a whole: after a failed TLS handshake nats-py may wait for ever (nats.py
        # issue 718) where each attempt should have taken its ``connect_timeout``.
        await within(
            nc.connect(
                servers=url.split(","),
                name=name,
                max_reconnect_attempts=ONESHOT_ATTEMPTS,
                reconnect_time_wait=1,
                connect_timeout=ONESHOT_TIMEOUT,
                error_cb=on_error,
                **ClientSecurity.from_env().connect_options(),
            ),
            (ONESHOT_ATTEMPTS + 1) * (ONESHOT_TIMEOUT + 1),
        )
    except Exception as exc:  # nats-py's "no servers": the attempts' own errors say why
        with contextlib.suppress(Exception):
            await within(nc.close(), 2)
        raise Unreachable(
            f"cannot reach NATS at {shown(url)}: {reason(most_telling(failures or [exc]))}"
        ) from None
    try:
        yield nc
    except Exception as exc:
        # A subject the credentials may not use: nats-py says so to the error callback only,
        # and the command meets a timeout or a broken pipe instead.
        refused = [f for f in failures if "permissions violation" in str(f).lower()]
        if refused:
            raise Unreachable(f"NATS at {shown(url)} refused: {reason(refused[-1])}") from None
        if nc.is_connected:
            raise
        raise Unreachable(
            f"lost NATS at {shown(url)}: {reason(most_telling(failures or [exc]))}"
        ) from None
    finally:
        await close(nc)


class Link:
    """Whether a client is connected, and since when without a break: its creation, or its
    last reconnect. A service judging silence (a host's figures, a job's pings) counts from
    there: while NATS was away nothing could be heard, so that time is no one's silence."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.reconnects = nc.stats["reconnects"]
        self.since = time.time()

    def up(self) -> bool:
        """Connected now; the first call after a reconnect moves ``since`` to now."""
        if not self.nc.is_connected:
            return False
        if self.nc.stats["reconnects"] != self.reconnects:
            self.reconnects = self.nc.stats["reconnects"]
            self.since = time.time()
        return True


def deadletter_for(
    data: bytes, stream: str, seq: int, subject: str, consumer: str, reason: str, at: float
) -> tuple[str, bytes, dict[str, str]]:
    """Subject, payload and headers of the deadletter event recording an undecodable message.

    The message id makes a repeated record (a redelivery, a second consumer
    meeting the same message) land once.
    """
    event = DeadLettered(
        at=at,
        kind="undecodable",
        stream=stream,
        seq=seq,
        subject=subject,
        consumer=consumer,
        reason=reason[:1000].replace("\x00", "\ufffd"),
        excerpt=codec.excerpt(data),
    )
    msg_id = f"deadletter.undecodable.{stream}.{seq}"
    return subjects.deadletter("undecodable"), codec.encode(event), {"Nats-Msg-Id": msg_id}


async def replay(
    js: JetStreamContext, subject: str, last_per_subject: bool = False, batch: int = 1000
) -> AsyncIterator[Msg]:
    """Yield every message of EVENTS on ``subject`` (or the last one of each subject), then stop.

    An ephemeral consumer without acks: reading the log changes nothing in it. Fetched by
    ``runtime.pull`` (nats-py's fetch takes a stored message with a ``Status`` header, which
    any publisher can give one, for the server's status and skips it).
    """
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT if last_per_subject else DeliverPolicy.ALL,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0,
        filter_subject=subject,
    )
    info = await js.add_consumer(EVENTS, config)
    pull = await Pull(js._nc, EVENTS, info.name, js._prefix).start()
    try:
        pending = info.num_pending or 0
        while pending > 0:
            try:
                msgs = await pull.fetch(min(batch, pending), timeout=5)
            except Exception:
                info = await js.consumer_info(EVENTS, info.name)
                pending = info.num_pending or 0
                continue
            for msg in msgs:
                yield msg
                pending = msg.metadata.num_pending or 0
    finally:
        await pull.close()
        with contextlib.suppress(Exception):
            await js.delete_consumer(EVENTS, info.name)


async def close(nc: Client) -> None:
    """Flush what we published and close. (``drain`` waits out pending pull requests, which
    can take its whole timeout; every service acks and awaits its publishes itself.)"""
    with contextlib.suppress(Exception):
        await nc.flush(timeout=2)
    # NATS away, what is pending cannot be written: closing says so (the connection is lost;
    # on uvloop a RuntimeError, "unable to perform operation on <TCPTransport closed=True>",
    # after nats-py cancelled its tasks), which must not turn a service's stop into a crash.
    with contextlib.suppress(OSError, RuntimeError):
        await nc.close()


async def publish_until_acked(
    js: JetStreamContext, subject: str, data: bytes, msg_id: str, ack_wait: float = 5.0
) -> PubAck:
    """Publish until JetStream has it, retrying with backoff: what is published is kept in
    memory until the log acknowledges it, so a dropped link loses nothing. The message id makes
    the retry of a publish that did land (its ack lost while NATS went away) harmless.
    Returns JetStream's acknowledgement (its ``seq`` is where the event stands in the log)."""

    delay = 0.2
    while True:
        try:
            ack: PubAck = await js.publish(
                subject, data, headers={"Nats-Msg-Id": msg_id}, timeout=ack_wait
            )
            return ack
        except Exception as exc:
            log.warning("publish failed, retrying", subject=subject, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


M = TypeVar("M")


class Fetcher(Protocol[M]):
    """What ``Puller`` fetches from: a pull subscription (nats-py's ``Msg``), or the
    projector's ``Pull`` (its own lighter messages)."""

    async def fetch(self, batch: int, timeout: float) -> list[M]: ...


def gathered_until(started: float, got: int, asked: int, gather: float) -> float:
    """When the next fetch may start (monotonic), the last one having started at ``started``
    and brought ``got`` of the ``asked``: while messages come a few at a time, one fetch
    per ``gather`` seconds; after a full batch (a backlog) or an empty one (a quiet spell),
    at once.

    Each fetch and its batch cost about the same for one message as for hundreds: the
    scheduler's verdicts (their acks, the completions' ack) and the projector's transaction
    (lock, position, statements, commit; a request's row rewritten once per batch rather
    than once per event of its life). Fetched as soon as they came, the projector's events
    came a few hundred at a time, and it and PostgreSQL spent 0.18 ms of CPU per check
    request in ``bench/drain.py``, 0.15 ms with 0.1 s."""
    return started + gather if 0 < got < asked else started


class Puller(Generic[M]):
    """The fetch of every consumer loop: a batch, or ``[]`` when nothing came in time or the
    fetch failed. A failure is logged once per distinct reason (not on every retry while it
    lasts) and followed by a short pause, so a loop is just ``msgs = await puller.fetch(n)``.
    ``gather``: see ``gathered_until``; a message waits at most that much longer."""

    def __init__(
        self,
        sub: Fetcher[M],
        what: str,
        timeout: float = 1.0,
        pause: float = 0.5,
        gather: float = 0.0,
    ) -> None:
        self.sub, self.what, self.timeout, self.pause = sub, what, timeout, pause
        self.gather = gather
        self.said = ""
        self._resume_at = 0.0

    async def fetch(self, batch: int) -> list[M]:
        wait = self._resume_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        started = time.monotonic()
        msgs = await self._fetch(batch)
        self._resume_at = gathered_until(started, len(msgs), batch, self.gather)
        return msgs

    async def _fetch(self, batch: int) -> list[M]:
        try:
            msgs: list[M] = await self.sub.fetch(batch, timeout=self.timeout)
        except (TimeoutError, NatsTimeout):
            return []
        except (ServiceUnavailableError, NoRespondersError):
            # The consumer (or its stream) is not there yet: the scheduler creates them.
            self._say(f"{self.what}: consumer not there yet; is the scheduler running?")
            await asyncio.sleep(2 * self.pause)
            return []
        except Exception as exc:  # a disconnected link: reconnecting is automatic
            self._say(f"{self.what}: fetch failed: {type(exc).__name__}: {exc}")
            await asyncio.sleep(self.pause)
            return []
        if self.said:
            log.info(f"{self.what}: fetching again")
            self.said = ""
        return msgs

    def _say(self, reason: str) -> None:
        if reason != self.said:
            log.warning(reason)
            self.said = reason
