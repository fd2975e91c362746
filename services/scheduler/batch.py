"""The scheduler's publishes, a batch at a time (a dispatch tick's requests, a fetch's
verdicts), acknowledged on one inbox.

nats-py's ``publish_async`` spends per message a semaphore, random bytes for a token, a future
with two callbacks and a ``PubAck`` parsed from JSON into a dataclass: a fifth of the
scheduler's CPU at 100,000 tasks (py-spy). Here a batch's messages go out with a counter for
token under one wildcard inbox subscribed once; each answer is looked at for an error only,
and the batch is woken once, when every message has its answer. What is not acknowledged in
time (or refused) is published again with ``bus.publish_until_acked`` under the same message
id, as before: one that did land with its acknowledgement lost is recorded once.

The answers skip nats-py's subscription: the connection's parser
(``runtime/framepull.py``) hands each acknowledgement's subject and payload to
:meth:`Publisher._frame` as it is read, without a ``Msg``, a queue and a task's turn for
each (two answers per request, a tenth of the scheduler's CPU); a status (503: no stream
takes the subject) still comes the nats-py way, to :meth:`Publisher._answered`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import (
    ConnectionClosedError,
    ConnectionDrainingError,
    MaxPayloadError,
    OutboundBufferLimitError,
)
from nats.js import JetStreamContext

from runtime import bus
from runtime.framepull import parser_of
from runtime.logs import Log

log = Log("tocsin.scheduler")


class _Answer(msgspec.Struct):
    """What JetStream answers a publish: a ``PubAck`` (stream, seq, duplicate …) or an error."""

    error: Any = None


_answer = msgspec.json.Decoder(_Answer)


def accepted(msg: Msg) -> bool:
    """Whether ``msg`` acknowledges a publish: not a status (503: no stream takes the
    subject), not an error, not garbage."""
    if msg.headers and msg.headers.get("Status"):
        return False
    return acknowledges(msg.data)


def acknowledges(data: bytes) -> bool:
    """Whether the payload of an answer without a status acknowledges a publish."""
    try:
        return _answer.decode(data).error is None
    except msgspec.DecodeError:
        return False


class Publisher:
    """Publishes whose answers come to ``<inbox>.<token>``, one subscription for all."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.prefix = ""
        self.next = 0
        #: token → the batch waiting for its answer.
        self.waiting: dict[str, Batch] = {}
        self.sub: Subscription | None = None

    async def start(self) -> Publisher:
        inbox = self.nc.new_inbox()
        self.prefix = f"{inbox}."
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

    async def send(self, subject: str, reply: str, msg_id: str, data: bytes) -> None:
        """``nc.publish(subject, data, reply, headers={"Nats-Msg-Id": msg_id})``, refusing
        what it refuses, built as one frame: its checks of the subject, the reply and each
        header (a regular expression and a translation each) are for names it does not know,
        and a third of its cost; these are the scheduler's own, tokens and numbers."""
        nc = self.nc
        if nc.is_closed:
            raise ConnectionClosedError
        if nc.is_draining_pubs:
            raise ConnectionDrainingError
        size = len(data)
        if not nc.is_connected and (
            nc._max_pending_size <= 0 or size + nc._pending_data_size > nc._max_pending_size
        ):
            raise OutboundBufferLimitError  # reconnecting, and the buffer is full
        if size > nc._max_payload:
            raise MaxPayloadError
        head = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % msg_id.encode()
        await nc._send_command(
            b"HPUB %s %s %d %d\r\n%s%s\r\n"
            % (subject.encode(), reply.encode(), len(head), len(head) + size, head, data)
        )
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await nc._flush_pending()

    async def _answered(self, msg: Msg) -> None:
        self._answer(msg.subject, accepted(msg))

    def _frame(self, subject: str, reply: str, data: bytes) -> None:
        self._answer(subject, acknowledges(data))

    def _answer(self, subject: str, ok: bool) -> None:
        token = subject[len(self.prefix) :]
        batch = self.waiting.pop(token, None)
        if batch is not None:
            batch.answered(token, ok)


class Batch:
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
        p.next += 1
        token = str(p.next)
        self.unacked[token] = (subject, data, msg_id)
        # Registered before sending: a full write buffer makes ``publish`` flush (a yield),
        # during which the answer may come.
        p.waiting[token] = self
        self.unanswered += 1
        try:
            await p.send(subject, p.prefix + token, msg_id, data)
        except Exception:
            if p.waiting.pop(token, None) is not None:
                self.unanswered -= 1

    def answered(self, token: str, ok: bool) -> None:
        if ok:
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
        waiting = self.publisher.waiting
        for token in self.unacked:
            waiting.pop(token, None)  # a late answer finds nobody waiting
        for subject, data, msg_id in self.unacked.values():
            log.warning("not acknowledged; publishing it again", subject=subject)
            await bus.publish_until_acked(js, subject, data, msg_id, ack_wait=timeout)
        self.unacked.clear()
