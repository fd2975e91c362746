"""JetStream publishes acknowledged on one inbox: the scheduler's a batch at a time (a dispatch
tick's requests, a fetch's verdicts), the agent's each awaited on its own (its completions).

nats-py's ``js.publish`` and ``publish_async`` spend per message random bytes for a token, a
future (with a timer, or a semaphore and two callbacks) and a ``PubAck`` parsed from JSON
into a dataclass: a fifth of the scheduler's CPU at 100,000 tasks, a tenth of an agent's
(py-spy). Here (:class:`Publisher`) the token is a counter under one wildcard inbox subscribed
once, the publish is one frame built here (:meth:`Publisher.send`), and each answer is looked
at for an error only (:func:`refusal`) and handed to whoever waits for its token (a
:class:`Waiter`), once: a late answer finds nobody. Two wait that way:

- :class:`Batch`: woken once, when every message has its answer; what is not acknowledged in
  time (or refused) is published again with ``bus.publish_until_acked``;
- :class:`EachAcked`: each publish awaits its own answer, one timer every :data:`TICK`
  seconds (while publishes wait) failing those waiting past the timeout; a publish is retried
  with backoff until JetStream has it, or until the agent stops.

Both publish again under the same message id: one that did land with its acknowledgement
lost is recorded once.

The answers skip nats-py's subscription: the connection's parser (``runtime/framepull.py``)
hands each acknowledgement's subject and payload to :meth:`Publisher._frame` as it is read,
without a ``Msg``, a queue and a task's turn for each (a tenth of the scheduler's CPU); a
status (503: no stream takes the subject) still comes the nats-py way, to
:meth:`Publisher._answered`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from runtime import bus
from runtime.framepull import parser_of, send_frame
from runtime.logs import Log

log = Log("tocsin.pubacks")

#: How often the publishes of an :class:`EachAcked` waiting past their timeout are failed (and
#: so retried), seconds.
TICK = 0.5


class PublishError(Exception):
    """JetStream refused the message, or nothing answered in time."""


class _Answer(msgspec.Struct):
    """What JetStream answers a publish: a ``PubAck`` (stream, seq, duplicate …) or an error."""

    error: Any = None


_answer = msgspec.json.Decoder(_Answer)


def refusal(msg: Msg) -> str | None:
    """Why ``msg`` does not acknowledge a publish (a status, 503: no stream takes the subject;
    an error; garbage), or None when it does."""
    status = msg.headers.get("Status") if msg.headers else None
    if status:
        return "no stream takes the subject" if status == "503" else f"status {status}"
    return payload_refusal(msg.data)


def payload_refusal(data: bytes) -> str | None:
    """:func:`refusal` of the payload of an answer without a status."""
    try:
        error = _answer.decode(data).error
    except msgspec.DecodeError:
        return f"not an acknowledgement: {data[:200]!r}"
    return None if error is None else str(error)


class Waiter(Protocol):
    def answered(self, token: str, refusal: str | None) -> None:
        """The answer to the publish sent under ``token``: None if JetStream has the message,
        else why not. Called once, from the connection's reads: it must not block."""


class Publisher:
    """Publishes whose answers come to ``<inbox>.<token>``, one subscription for all."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.prefix = ""
        self._prefix = b""
        self.next = 0
        #: token → who waits for its answer.
        self.waiting: dict[str, Waiter] = {}
        self.sub: Subscription | None = None

    async def start(self) -> Publisher:
        inbox = self.nc.new_inbox()
        self.prefix = f"{inbox}."
        self._prefix = self.prefix.encode()
        self.sub = await self.nc.subscribe(f"{inbox}.*", cb=self._answered)
        parser_of(self.nc).routes[self.sub._id] = self._frame
        return self

    async def close(self) -> None:
        if self.sub is not None:
            parser_of(self.nc).routes.pop(self.sub._id, None)
            with contextlib.suppress(Exception):
                await self.sub.unsubscribe()
            self.sub = None

    def batch(self) -> Batch:
        return Batch(self)

    def token(self, waiter: Waiter) -> str:
        """A fresh token, its answer for ``waiter``. Taken before sending: a full write buffer
        makes ``send`` flush (a yield), during which the answer may come."""
        self.next += 1
        token = str(self.next)
        self.waiting[token] = waiter
        return token

    def forget(self, token: str) -> bool:
        """Nobody waits for ``token`` any more (a late answer finds nobody); whether its
        answer was still awaited."""
        return self.waiting.pop(token, None) is not None

    async def send(self, subject: str, token: str, msg_id: str, data: bytes) -> None:
        """``nc.publish(subject, data, <inbox>.<token>, headers={"Nats-Msg-Id": msg_id})``,
        refusing what it refuses, built as one frame: its checks of the subject, the reply and
        each header (a regular expression and a translation each) are a third of its cost."""
        nc = self.nc
        if " " in subject or " " in msg_id or not subject.isprintable() or not msg_id.isprintable():
            # Whitespace or a line break (not in our tokens and numbers, but a request id is
            # free text): nats-py refuses the subject, or cleans the header, as ever.
            reply = self.prefix + token
            await nc.publish(subject, data, reply, headers={"Nats-Msg-Id": msg_id})
            return
        head = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % msg_id.encode()
        to = self._prefix + token.encode()
        frame = b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
            subject.encode(),
            to,
            len(head),
            len(head) + len(data),
            head,
            data,
        )
        await send_frame(nc, frame, len(data))

    async def _answered(self, msg: Msg) -> None:
        self._answer(msg.subject, refusal(msg))

    def _frame(self, subject: str, reply: str, data: bytes) -> None:
        self._answer(subject, payload_refusal(data))

    def _answer(self, subject: str, refused: str | None) -> None:
        token = subject[len(self.prefix) :]
        waiter = self.waiting.pop(token, None)
        if waiter is not None:
            waiter.answered(token, refused)


class Batch:
    """Publishes woken once, when all are answered."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        #: token → (subject, data, message id) of each publish not acknowledged yet.
        self.unacked: dict[str, tuple[str, bytes, str]] = {}
        self.unanswered = 0
        self.all_answered = asyncio.Event()

    async def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        """Send; one not even sent (reconnect buffer full) stays unacknowledged, and
        ``acked`` publishes it again."""
        p = self.publisher
        token = p.token(self)
        self.unacked[token] = (subject, data, msg_id)
        self.unanswered += 1
        try:
            await p.send(subject, token, msg_id, data)
        except Exception:
            if p.forget(token):
                self.unanswered -= 1

    def answered(self, token: str, refusal: str | None) -> None:
        if refusal is None:
            del self.unacked[token]
        self.unanswered -= 1
        if self.unanswered == 0:
            self.all_answered.set()

    async def acked(self, js: JetStreamContext, timeout: float) -> None:
        """Wait for every answer, at most ``timeout`` for all of them together; publish what
        was not acknowledged again, with the same message id, until JetStream has it.

        A publish in flight when the server went away (or whose answer was lost) is never
        answered: the wait is bounded, or the loop publishing would block for good."""
        if self.unanswered:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_answered.wait(), timeout)
        for token in self.unacked:
            self.publisher.forget(token)
        for subject, data, msg_id in self.unacked.values():
            log.warning("not acknowledged; publishing it again", subject=subject)
            await bus.publish_until_acked(js, subject, data, msg_id, ack_wait=timeout)
        self.unacked.clear()


class EachAcked:
    """Publishes each awaiting its own answer (the agent's completions, one per run)."""

    def __init__(
        self, publisher: Publisher, timeout: float = 5.0, stopping: asyncio.Event | None = None
    ) -> None:
        self.publisher = publisher
        self._timeout = timeout
        self._stopping = stopping or asyncio.Event()
        #: token → (the future of its answer, when to give up), in the order they went out.
        self._waiting: dict[str, tuple[asyncio.Future[str | None], float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        #: The loop of the first publish: ``asyncio.get_running_loop()`` costs a system call
        #: (getpid) on every call in Python 3.11, 2 % of an agent's CPU (py-spy ``--native``).
        self._loop: asyncio.AbstractEventLoop | None = None

    async def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        """Publish until JetStream acknowledged it, or until ``stopping``: tried no more then
        (``PublishError``), since NATS away would keep the stop waiting as long; what the
        message answers comes back to another agent unacknowledged."""
        delay = 0.2
        while True:
            try:
                await self._once(subject, data, msg_id)
                return
            except Exception as exc:
                log.warning("publish failed, retrying", subject=subject, error=str(exc))
                failed = exc
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                raise PublishError(f"not published before the stop: {failed}")
            delay = min(delay * 2, 5.0)

    async def _once(self, subject: str, data: bytes, msg_id: str) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        p = self.publisher
        token = p.token(self)
        answer: asyncio.Future[str | None] = loop.create_future()
        self._waiting[token] = (answer, loop.time() + self._timeout)
        if self._timer is None:
            self._timer = loop.call_later(TICK, self._expire, loop)
        try:
            await p.send(subject, token, msg_id, data)
            refused = await answer
        finally:
            self._waiting.pop(token, None)
            p.forget(token)
        if refused is not None:
            raise PublishError(refused)

    def answered(self, token: str, refusal: str | None) -> None:
        entry = self._waiting.get(token)
        if entry is not None and not entry[0].done():
            entry[0].set_result(refusal)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        waiting = self._waiting
        # Every publish has the same timeout: the first ones in are the first ones due.
        while waiting:
            token, (answer, due) = next(iter(waiting.items()))
            if due > now:
                break
            del waiting[token]
            if not answer.done():
                answer.set_exception(PublishError("no acknowledgement in time"))
        self._timer = loop.call_later(TICK, self._expire, loop) if waiting else None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
