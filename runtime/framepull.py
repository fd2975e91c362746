"""A pull consumer's messages in batches, one wake-up per batch, read off the connection's
parser (the projector's fetch, the scheduler's completions, the agents' work; the publish
acknowledgements of ``runtime/pubacks.py``, the scheduler's and the agent's, go through the
same parser).

nats-py's ``PullSubscription.fetch`` waits for each message of a batch with ``next_msg``: a
task, a timer and a uuid per message, 40 % of the projector's CPU on a backlog (py-spy).
``Pull`` asks the server the same question (what is there now, else wait for what comes until
the timeout) from an inbox of its own, and wakes the fetch once, when the batch is full or
the server ends the request. It raises what ``fetch`` raises, so ``bus.Puller`` handles it
the same way.

Its messages do not go through nats-py's subscription either: parsing each frame with
regular expressions, its headers with the e-mail parser, building a ``Msg``, queueing it
for a task that awaits the callback was the next largest part of the CPU. ``_Parser`` (the
connection's protocol parser, nats-py's with one path added) cuts the inbox's data frames
out of what is read and files them in the batch as ``Delivered`` (subject, reply, payload);
every other frame, and the inbox's status frames (no messages, expired, heartbeats), go
the nats-py way, to the subscription.
"""

from __future__ import annotations

from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import (
    BadSubjectError,
    ConnectionClosedError,
    ConnectionDrainingError,
    MaxPayloadError,
    OutboundBufferLimitError,
    ProtocolError,
)
from nats.protocol.parser import AWAITING_MSG_PAYLOAD, Parser

from runtime.pull import BatchPull

#: The header block of a message with headers and no status (``NATS/1.0 404 …`` has one).
_PLAIN_HEADERS = b"NATS/1.0\r\n"


class Delivered:
    """A message of the pull: what its readers use of nats-py's ``Msg``."""

    __slots__ = ("_nc", "data", "reply", "subject")

    def __init__(self, nc: Client, subject: str, reply: str, data: bytes) -> None:
        self._nc, self.subject, self.reply, self.data = nc, subject, reply, data

    @property
    def metadata(self) -> Msg.Metadata:
        return Msg.Metadata._from_reply(self.reply)

    async def ack(self) -> None:
        """Acknowledge (with AckAll: every message of the consumer up to this one): the frame
        written as is, its reply subject read off a frame (so one token without blanks)."""
        if not self.reply:
            raise BadSubjectError  # as nats-py refuses it: no frame without a subject
        await send_frame(self._nc, b"PUB %s 0\r\n\r\n" % self.reply.encode(), 0)

    async def in_progress(self) -> None:
        """Tell JetStream the message is still being worked on (its ack wait starts again)."""
        await self._nc.publish(self.reply, Msg.Ack.Progress)

    async def term(self) -> None:
        """Never deliver the message again (it cannot be handled, now or later)."""
        await self._nc.publish(self.reply, Msg.Ack.Term)


async def send_frame(nc: Client, frame: bytes, size: int) -> None:
    """Write ``frame``, a publish of a payload of ``size`` bytes, as ``nc.publish`` would
    write it, refusing what it refuses (closed, draining, reconnecting with a full buffer, too
    large), without building it again from its subject, reply and headers."""
    if nc.is_closed:
        raise ConnectionClosedError
    if nc.is_draining_pubs:
        raise ConnectionDrainingError
    if not nc.is_connected and (
        nc._max_pending_size <= 0 or size + nc._pending_data_size > nc._max_pending_size
    ):
        raise OutboundBufferLimitError  # reconnecting, and the buffer is full
    if size > nc._max_payload:
        raise MaxPayloadError
    await nc._send_command(frame)
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()


class _Parser(Parser):
    """nats-py's parser, with the data frames of some subscriptions (``routes``: by sid)
    handed to their callbacks as ``(subject, reply, payload)`` right away."""

    def __init__(self, nc: Client, before: Parser) -> None:
        super().__init__(nc)
        #: The parser replaced: it may stop amid a frame, whose bytes and state are taken over.
        self.before: Parser | None = before
        self.routes: dict[int, Callable[[str, str, bytes], None]] = {}

    async def parse(self, data: bytes = b"") -> None:
        if self.before is not None:
            await self._take_over(self.before)
        buf = self.buf
        buf.extend(data)
        # Parsed as bytes (cut and split into bytes, cheaper than a bytearray's pieces); the
        # buffer is cut once, at the end, by what was parsed.
        read = bytes(buf)
        at = 0
        try:
            while True:
                end = read.find(b"\r\n", at)
                if end < 0:
                    break
                frame = _frame(read[at:end].split())
                if frame is None:  # PING, INFO, +OK, -ERR …: nats-py's way, one line at a time
                    line, at = bytearray(read[at : end + 2]), end + 2
                    await self._one_line(line)
                    if self.buf is not buf:
                        return  # reset (reconnecting) meanwhile: what was read is void
                    continue
                subject, sid, reply, header_size, size = frame
                start = end + 2
                if len(read) < start + size + 2:
                    break  # the rest of the frame is still to come
                at = start + size + 2
                headers = read[start : start + header_size] if header_size else None
                payload = read[start + header_size : start + size]
                route = self.routes.get(sid)
                if route is not None and (headers is None or headers.startswith(_PLAIN_HEADERS)):
                    route(subject.decode(), reply.decode(), payload)
                    continue
                await self.nc._process_msg(sid, subject, reply, payload, headers)  # type: ignore[arg-type]
                if self.buf is not buf:
                    return
        finally:
            if self.buf is buf:
                del buf[:at]

    async def _one_line(self, line: bytearray) -> None:
        buf, self.buf = self.buf, line
        try:
            await super().parse()
        finally:
            if self.buf is line:
                self.buf = buf

    async def _take_over(self, before: Parser) -> None:
        """Continue where ``before`` stopped (its buffer; a frame's payload it awaits)."""
        self.before = None
        self.buf, self.state, self.msg_arg = before.buf, before.state, before.msg_arg
        self.needed, self.header_needed = before.needed, before.header_needed
        if self.state == AWAITING_MSG_PAYLOAD:
            # nats-py's own parse ends that frame, and only it: the rest is put back after.
            rest = bytes(self.buf[self.needed + 2 :])
            del self.buf[self.needed + 2 :]
            await super().parse()
            self.buf.extend(rest)


def _frame(head: list[bytes]) -> tuple[bytes, int, bytes, int, int] | None:
    """``MSG <subject> <sid> [reply] <size>`` or ``HMSG <subject> <sid> [reply] <header size>
    <size>`` as (subject, sid, reply, header size, size); None for another line."""
    if not head or head[0] not in (b"MSG", b"HMSG"):
        return None
    hmsg = head[0] == b"HMSG"
    try:
        if len(head) == 4 + hmsg:
            return head[1], int(head[2]), b"", int(head[-2]) if hmsg else 0, int(head[-1])
        if len(head) == 5 + hmsg:
            return head[1], int(head[2]), head[3], int(head[-2]) if hmsg else 0, int(head[-1])
    except ValueError:
        pass
    raise ProtocolError("nats: malformed MSG")


def parser_of(nc: Client) -> _Parser:
    """The connection's ``_Parser``, put in place of nats-py's the first time (publishes'
    acknowledgements are routed through it too: ``runtime/pubacks.py``)."""
    if not isinstance(nc._ps, _Parser):
        nc._ps = _Parser(nc, nc._ps)
    return nc._ps


class Pull(BatchPull[Delivered]):
    """The fetch of ``runtime.pull``, its data frames filed by the connection's parser."""

    async def start(self) -> Pull:
        await super().start()
        assert self.sub is not None
        parser_of(self.nc).routes[self.sub._id] = self._frame
        return self

    async def close(self) -> None:
        if self.sub is not None:
            parser_of(self.nc).routes.pop(self.sub._id, None)
        await super().close()

    def _frame(self, subject: str, reply: str, data: bytes) -> None:
        self._file(Delivered(self.nc, subject, reply, data))

    def _message(self, msg: Msg) -> Delivered:
        return Delivered(self.nc, msg.subject, msg.reply, msg.data)
