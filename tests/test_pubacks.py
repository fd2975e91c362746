"""Publishes acknowledged on one inbox (``runtime/pubacks.py``), against a real NATS: through
either of its users (the scheduler's ``Batch``, woken once all are answered; the agent's
``EachAcked``, each awaiting its own answer) every message lands once, whatever went wrong
before: no stream yet, no answer in time, JetStream refusing it, the same message again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import BadSubjectError, ConnectionClosedError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StreamConfig

from runtime.embedded import NatsServer
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


@pytest.mark.parametrize("user", USERS)
async def test_a_publish_no_stream_takes_is_published_again_until_one_does(
    connected: tuple[Client, Publisher], user: str, caplog: pytest.LogCaptureFixture
) -> None:
    """NATS answers "no responders" (a status 503, the nats-py way): not acknowledged."""
    caplog.set_level("WARNING", logger="tocsin.pubacks")
    nc, publisher = connected
    js = nc.jetstream()
    publishing = asyncio.create_task(_publish(user, js, publisher, [("s.1", b"x", "only-once")]))
    await wait_for(lambda: _value(_retried(caplog)), what="the refusal")
    assert not publishing.done()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    await asyncio.wait_for(publishing, 60)
    assert await _stored(js, "s.1") == (1, b"x")
    assert publisher.waiting == {}


@pytest.mark.parametrize("user", USERS)
async def test_a_publish_jetstream_refuses_is_published_again_until_it_takes_it(
    connected: tuple[Client, Publisher], user: str, caplog: pytest.LogCaptureFixture
) -> None:
    """JetStream answers with an error (the stream is full): not acknowledged."""
    caplog.set_level("WARNING", logger="tocsin.pubacks")
    nc, publisher = connected
    js = nc.jetstream()
    full = StreamConfig(name="S", subjects=["s.>"], max_msgs=1, discard=DiscardPolicy.NEW)
    await js.add_stream(full)
    messages = [("s.1", b"x", "first"), ("s.2", b"y", "second")]
    publishing = asyncio.create_task(_publish(user, js, publisher, messages))
    await wait_for(lambda: _value(_retried(caplog)), what="the refusal")
    assert not publishing.done()
    await js.update_stream(StreamConfig(name="S", subjects=["s.>"], max_msgs=10))
    await asyncio.wait_for(publishing, 60)
    assert [await _stored(js, s) for s in ("s.1", "s.2")] == [(1, b"x"), (1, b"y")]
    assert publisher.waiting == {}


@pytest.mark.parametrize("user", USERS)
async def test_a_publish_nobody_answers_is_published_again(
    connected: tuple[Client, Publisher], user: str
) -> None:
    """Something listens on the subject but never answers: the wait is bounded, the publish
    goes out again (and again), then lands once a stream takes it."""
    nc, publisher = connected
    js = nc.jetstream()
    heard: list[bytes] = []

    async def silent(msg: Msg) -> None:
        heard.append(msg.data)

    sub = await nc.subscribe("s.1", cb=silent)
    publishing = asyncio.create_task(_publish(user, js, publisher, [("s.1", b"x", "m1")]))
    await wait_for(lambda: _value(len(heard) >= 2), what="the publish tried twice")
    assert not publishing.done()
    await sub.unsubscribe()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    await asyncio.wait_for(publishing, 60)
    assert await _stored(js, "s.1") == (1, b"x")
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
    await publisher.send("s.ours", "r.1", msg_id, b'{"x":1}')
    await nc.publish("s.theirs", b'{"x":1}', reply="r.1", headers={"Nats-Msg-Id": msg_id})
    ours, theirs = await sub.next_msg(5), await sub.next_msg(5)
    assert ours.subject == "s.ours" and theirs.subject == "s.theirs"
    assert (ours.reply, ours.headers, ours.data) == (theirs.reply, theirs.headers, theirs.data)


@pytest.mark.parametrize("subject", ["s.a b", "s.a\r\nPUB s.b 0", "s.a\tb"])
async def test_a_subject_nats_py_refuses_is_refused(
    connected: tuple[Client, Publisher], subject: str
) -> None:
    _, publisher = connected
    with pytest.raises(BadSubjectError):
        await publisher.send(subject, "r.1", "m", b"x")


async def test_nothing_is_sent_on_a_closed_connection(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    publisher = await Publisher(nc).start()
    await publisher.close()
    await nc.close()
    with pytest.raises(ConnectionClosedError):
        await publisher.send("s.ours", "r.1", "m", b"x")


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
