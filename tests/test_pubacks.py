"""Publishes acknowledged on one inbox (``runtime/pubacks.py``), against a real NATS: through
either of its users (the scheduler's ``Batch``, woken once all are answered; the agent's
``EachAcked``, each awaiting its own answer) every message lands once, whatever went wrong
before: no stream yet, no answer in time, JetStream refusing it, the same message again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import BadSubjectError, ConnectionClosedError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StreamConfig

from runtime.embedded import NatsServer
from runtime.framepull import Delivered
from runtime.pubacks import EachAcked, Publisher, refusal
from tests.helpers import wait_for

#: The two ways of waiting for the answers, each case run through both.
USERS = ["batch", "each-acked"]


@pytest.fixture
async def connected(nats_server: NatsServer) -> AsyncIterator[tuple[Client, Publisher]]:
    nc = await nats.connect(nats_server.url)
    publisher = await Publisher(nc).start()
    try:
        yield nc, publisher
    finally:
        await publisher.close()
        await nc.close()


async def _publish(
    user: str, js: JetStreamContext, publisher: Publisher, messages: list[tuple[str, bytes, str]]
) -> None:
    """Publish ``messages`` (subject, data, message id) as ``user`` does, waiting at most a
    second for an answer before publishing again, until JetStream has every one."""
    if user == "batch":
        batch = publisher.batch()
        for message in messages:
            await batch.publish(*message)
        await batch.acked(js, 1.0)
        assert batch.unacked == {}
        return
    each = EachAcked(publisher, timeout=1.0)
    try:
        await asyncio.gather(*(each.publish(*message) for message in messages))
    finally:
        each.close()


async def _stored(js: JetStreamContext, subject: str) -> tuple[int, bytes | None]:
    """How many messages stream S holds on ``subject``, and the last one's data."""
    info = await js.stream_info("S", subjects_filter=subject)
    last = await js.get_last_msg("S", subject)
    return (info.state.subjects or {}).get(subject, 0), last.data


@pytest.mark.parametrize("user", USERS)
async def test_every_message_lands_once_per_message_id(
    connected: tuple[Client, Publisher], user: str
) -> None:
    nc, publisher = connected
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    messages = [(f"s.{i % 7}", str(i).encode(), f"m{i}") for i in range(1_000)]
    # The same message id again (an agent that died before acking its request): kept once.
    await _publish(user, js, publisher, [*messages, ("s.0", b"0", "m0")])
    assert (await js.stream_info("S")).state.messages == 1_000
    assert publisher.waiting == {}
    # Every acknowledgement was read off the connection's parser, none went the nats-py way
    # (a Msg, a queue, a task's turn each).
    assert publisher.sub is not None and publisher.sub.delivered == 0


async def _no_stream_yet(nc: Client, js: JetStreamContext) -> AsyncIterator[None]:
    """NATS answers "no responders" (a status, the nats-py way) until a stream takes it."""
    yield
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))


async def _stream_full(nc: Client, js: JetStreamContext) -> AsyncIterator[None]:
    """JetStream answers with an error (the stream is full) until there is room."""
    full = StreamConfig(name="S", subjects=["s.>"], max_msgs=1, discard=DiscardPolicy.NEW)
    await js.add_stream(full)
    yield
    await js.update_stream(StreamConfig(name="S", subjects=["s.>"], max_msgs=10))


async def _nobody_answers(nc: Client, js: JetStreamContext) -> AsyncIterator[None]:
    """Something listens on the subjects but never answers (the wait is bounded), until it
    goes and a stream takes them."""

    async def silent(msg: Msg) -> None:
        pass

    sub = await nc.subscribe("s.>", cb=silent)
    yield
    await sub.unsubscribe()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))


@pytest.mark.parametrize(
    "obstacle",
    [_no_stream_yet, _stream_full, _nobody_answers],
    ids=["no-stream-yet", "stream-full", "nobody-answers"],
)
@pytest.mark.parametrize("user", USERS)
async def test_what_jetstream_did_not_take_is_published_again_until_it_does(
    connected: tuple[Client, Publisher],
    user: str,
    obstacle: Callable[[Client, JetStreamContext], AsyncIterator[None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="tocsin.pubacks")
    nc, publisher = connected
    js = nc.jetstream()
    steps = obstacle(nc, js)
    await anext(steps)
    messages = [("s.1", b"x", "first"), ("s.2", b"y", "second")]
    publishing = asyncio.create_task(_publish(user, js, publisher, messages))
    await wait_for(lambda: _value(_retried(caplog)), what="a publish found not acknowledged")
    assert not publishing.done()
    with contextlib.suppress(StopAsyncIteration):
        await anext(steps)  # the obstacle gone
    await asyncio.wait_for(publishing, 60)
    assert [await _stored(js, s) for s in ("s.1", "s.2")] == [(1, b"x"), (1, b"y")]
    assert publisher.waiting == {}


@pytest.mark.parametrize(
    "msg_id",
    [
        pytest.param("request.g1.default.17", id="an-id-of-ours"),
        pytest.param("completed.a b", id="an-id-with-a-space"),
        pytest.param("completed.a\r\nNats-Expected-Stream: X", id="an-id-with-a-line-break"),
    ],
)
async def test_a_publish_is_the_frame_nats_py_sends(
    connected: tuple[Client, Publisher], msg_id: str
) -> None:
    """The publisher's frame carries what ``nc.publish`` with the message id would: the same
    subject, reply, header and payload (a request id is free text: a line break is cleaned,
    never a header of its own)."""
    nc, publisher = connected
    sub = await nc.subscribe("s.>")
    await publisher.send("s.ours", "7", msg_id, b'{"x":1}')
    reply = publisher.prefix + "7"
    await nc.publish("s.theirs", b'{"x":1}', reply=reply, headers={"Nats-Msg-Id": msg_id})
    ours, theirs = await sub.next_msg(5), await sub.next_msg(5)
    assert ours.subject == "s.ours" and theirs.subject == "s.theirs"
    assert (ours.reply, ours.headers, ours.data) == (theirs.reply, theirs.headers, theirs.data)


@pytest.mark.parametrize(
    "subject", ["s.a b", "s.a\r\nPUB s.b 0", "s.a\tb"], ids=["a-space", "a-line-break", "a-tab"]
)
async def test_a_subject_nats_py_refuses_is_refused(
    connected: tuple[Client, Publisher], subject: str
) -> None:
    _, publisher = connected
    with pytest.raises(BadSubjectError):
        await publisher.send(subject, "1", "m", b"x")


async def test_nothing_is_sent_on_a_closed_connection(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    publisher = await Publisher(nc).start()
    await publisher.close()
    await nc.close()
    with pytest.raises(ConnectionClosedError):
        await publisher.send("s.ours", "1", "m", b"x")


async def test_an_ack_is_the_frame_nats_py_sends(
    connected: tuple[Client, Publisher], nats_server: NatsServer
) -> None:
    """A delivered message's ack, written as a frame, is what ``nc.publish(reply)`` sends: an
    empty message on the reply subject; and like it, nothing on a closed connection."""
    nc, _ = connected
    sub = await nc.subscribe("acks.>")
    await Delivered(nc, "work.g1", "acks.ours", b"{}").ack()
    await nc.publish("acks.theirs")
    ours, theirs = await sub.next_msg(5), await sub.next_msg(5)
    assert (ours.subject, theirs.subject) == ("acks.ours", "acks.theirs")
    assert (ours.reply, ours.headers, ours.data) == (theirs.reply, theirs.headers, theirs.data)
    with pytest.raises(BadSubjectError):
        await Delivered(nc, "work.g1", "", b"{}").ack()  # no reply: nats-py refuses it too
    closed = await nats.connect(nats_server.url)
    await closed.close()
    with pytest.raises(ConnectionClosedError):
        await Delivered(closed, "work.g1", "acks.ours", b"{}").ack()


def _answer(data: bytes, headers: dict[str, str] | None = None) -> Msg:
    return Msg(None, subject="_INBOX.x.1", data=data, headers=headers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "msg, acknowledged",
    [
        pytest.param(_answer(b'{"stream":"S","seq":7}'), True, id="pub-ack"),
        pytest.param(_answer(b'{"stream":"S","seq":7,"duplicate":true}'), True, id="duplicate"),
        pytest.param(
            _answer(b'{"error":{"code":503,"err_code":10077,"description":"x"}}'),
            False,
            id="error",
        ),
        pytest.param(_answer(b"", {"Status": "503"}), False, id="no-responders"),
        pytest.param(_answer(b"not json"), False, id="garbage"),
    ],
)
def test_only_a_pub_ack_is_an_acknowledgement(msg: Msg, acknowledged: bool) -> None:
    assert (refusal(msg) is None) is acknowledged


async def _value(v: object) -> object:
    return v


def _retried(caplog: pytest.LogCaptureFixture) -> bool:
    """Whether a publish was found not acknowledged (and so is published again)."""
    return any(r.name == "tocsin.pubacks" for r in caplog.records)
