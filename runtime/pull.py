"""A pull consumer's messages in batches, one wake-up per batch (the scheduler's completions).

nats-py's ``PullSubscription.fetch`` waits for each message of a batch with ``next_msg``: a
task, a timer and a uuid per message, 40 % of the projector's CPU on a backlog and two loop
iterations and a ``getrandom`` call per completion in the scheduler (py-spy, strace).
``Pull`` asks the server the same question (what is there now, else wait for what comes until
the timeout) from an inbox of its own, whose callback files each message into the batch
being filled and wakes the fetch once, when the batch is full or the server ends the
request. It raises what ``fetch`` raises, so ``bus.Puller`` handles it the same way. The
messages are nats-py's, acked as usual; ``runtime/framepull.py`` (the projector's fetch, the
scheduler's completions) files lighter ones of its own, cut out of the connection's reads.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from typing import Generic, Protocol, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError

#: Statuses that end a pull request without an error: no messages (404), expired (408),
#: and the conflicts nats-py also takes as temporary (409: leader change, too many waiting).
_OVER = frozenset({"404", "408", "409"})
_HEARTBEAT = "100"
_STATUS = "Status"


M = TypeVar("M")


class BatchPull(ABC, Generic[M]):
    """The fetch, whatever a delivered message is made into (:meth:`_message`)."""

    def __init__(self, nc: Client, stream: str, consumer: str, api: str = "$JS.API") -> None:
        self.nc = nc
        self.subject = f"{api}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.inbox = nc.new_inbox()
        self.sub: Subscription | None = None
        #: Messages delivered and not handed out yet (a late answer to an earlier request
        #: included: the next fetch hands it out first).
        self.msgs: list[M] = []
        self.want = 0
        self.ended: Msg | None = None
        self.wake = asyncio.Event()

    async def start(self) -> BatchPull[M]:
        self.sub = await self.nc.subscribe(self.inbox, cb=self._take)
        return self

    async def close(self) -> None:
        if self.sub is not None:
            await self.sub.unsubscribe()

    @abstractmethod
    def _message(self, msg: Msg) -> M:
        """What a delivered message is handed out as."""

    def _file(self, msg: M) -> None:
        self.msgs.append(msg)
        if len(self.msgs) >= self.want:
            self.wake.set()

    async def _take(self, msg: Msg) -> None:
        # The server's statuses come without a reply subject; a message of the stream always
        # has one (its ack subject), even one whose publisher gave it a "Status" header.
        status = msg.headers.get(_STATUS) if msg.headers and not msg.reply else None
        if status is None:
            self._file(self._message(msg))
        elif status != _HEARTBEAT:
            self.ended = msg
            self.wake.set()

    async def fetch(self, batch: int, timeout: float = 5.0) -> list[M]:
        """Up to ``batch`` messages: those the consumer has now, else the first ones to come
        within ``timeout`` (nats.errors.TimeoutError when none does).

        One request, ``no_wait`` with ``expires``: the server hands out what it has and ends
        the request, or, having nothing, waits for what comes until it expires."""
        needed = batch - len(self.msgs)
        if needed > 0:
            self.want, self.ended = batch, None
            self.wake.clear()
            expires = max(int(timeout * 1e9) - 100_000, 1)
            ask = {"batch": needed, "no_wait": True, "expires": expires}
            await self.nc.publish(self.subject, json.dumps(ask).encode(), self.inbox)
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except TimeoutError:
                pass
        out, self.msgs = self.msgs[:batch], self.msgs[batch:]
        if out:
            return out
        ended, self.ended = self.ended, None
        if ended is not None and ended.headers and ended.headers.get(_STATUS) not in _OVER:
            raise APIError.from_msg(ended)  # 503: no such consumer, …
        raise NatsTimeout


class Pull(BatchPull[Msg]):
    """nats-py's messages, acked as usual."""

    def _message(self, msg: Msg) -> Msg:
        return msg


class Replied(Protocol):
    reply: str


def _ack_fields(msg: Replied) -> tuple[list[str], int]:
    """The tokens of a pulled message's ack subject and how far its fields are shifted:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…``, or, in the 12-token form, a
    domain and an account hash first (two tokens later). Reading them here is several times
    cheaper than ``msg.metadata``, which parses every field into objects."""
    tokens = msg.reply.split(".")
    return tokens, 0 if len(tokens) < 12 else 2


def stream_seq(msg: Replied) -> int:
    """A pulled message's stream sequence (2-3 % of the scheduler's CPU and 12 % of the
    projector's through ``msg.metadata``)."""
    tokens, shift = _ack_fields(msg)
    return int(tokens[5 + shift])


def deliveries(msg: Replied) -> int:
    """How many times JetStream delivered a pulled message (the agent's, per request)."""
    tokens, shift = _ack_fields(msg)
    return int(tokens[4 + shift])
