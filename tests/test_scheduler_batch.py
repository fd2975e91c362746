"""The scheduler's batched publishes (``services.scheduler.batch``), against a real NATS:
every message lands once, and what JetStream did not take is published again until it does
(its fetch of completions, ``runtime.pull``, is tested with the projector's in
``test_pull.py``)."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.js.api import DiscardPolicy, StreamConfig

from runtime.embedded import NatsServer
from services.scheduler.batch import Publisher, accepted
from tests.helpers import wait_for


async def test_a_batch_lands_once_per_message_id(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    publisher = await Publisher(nc).start()
    try:
        batch = publisher.batch()
        for i in range(1_000):
            await batch.publish(f"s.{i % 7}", str(i).encode(), f"m{i}")
        await batch.publish("s.0", b"0", "m0")  # the same message id: recorded once
        await batch.acked(js, 30.0)
        assert batch.unacked == {} and publisher.waiting == {}
        info = await js.stream_info("S")
        assert info.state.messages == 1_000
        # Every acknowledgement was read off the connection's parser, none went the nats-py
        # way (a Msg, a queue, a task's turn each).
        assert publisher.sub is not None and publisher.sub.delivered == 0
    finally:
        await publisher.close()
        await nc.close()


async def test_what_jetstream_did_not_take_is_published_again(nats_server: NatsServer) -> None:
    """No stream takes the subject yet (NATS answers "no responders"): the batch publishes it
    again until one does, and it lands once."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    publisher = await Publisher(nc).start()
    try:
        batch = publisher.batch()
        await batch.publish("s.1", b"x", "only-once")
        acked = asyncio.create_task(batch.acked(js, 1.0))
        await wait_for(lambda: _true(batch.unanswered == 0), what="the refusal")
        assert not acked.done()
        await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
        await asyncio.wait_for(acked, 60)
        assert (await js.stream_info("S")).state.messages == 1
    finally:
        await publisher.close()
        await nc.close()


async def test_a_publish_jetstream_refuses_is_published_again(nats_server: NatsServer) -> None:
    """JetStream answers with an error (the stream is full): not acknowledged, published
    again until the stream takes it."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    config = StreamConfig(name="S", subjects=["s.>"], max_msgs=1, discard=DiscardPolicy.NEW)
    await js.add_stream(config)
    publisher = await Publisher(nc).start()
    try:
        batch = publisher.batch()
        await batch.publish("s.1", b"x", "first")
        await batch.publish("s.1", b"y", "second")
        acked = asyncio.create_task(batch.acked(js, 1.0))
        await wait_for(lambda: _true(batch.unanswered == 0), what="the answers")
        assert [m for _, _, m in batch.unacked.values()] == ["second"]
        await js.update_stream(StreamConfig(name="S", subjects=["s.>"], max_msgs=10))
        await asyncio.wait_for(acked, 60)
        assert (await js.stream_info("S")).state.messages == 2
    finally:
        await publisher.close()
        await nc.close()


async def test_a_publish_is_the_frame_nats_py_sends(nats_server: NatsServer) -> None:
    """The publisher's frame carries what ``nc.publish`` with the message id would: the same
    subject, reply, header and payload; a closed connection is refused alike."""
    nc = await nats.connect(nats_server.url)
    sub = await nc.subscribe("s.>")
    publisher = await Publisher(nc).start()
    try:
        await publisher.send("s.ours", "r.1", "request.g1.default.17", b'{"x":1}')
        await nc.publish(
            "s.theirs", b'{"x":1}', reply="r.1", headers={"Nats-Msg-Id": "request.g1.default.17"}
        )
        ours, theirs = await sub.next_msg(5), await sub.next_msg(5)
        assert ours.subject == "s.ours" and theirs.subject == "s.theirs"
        assert (ours.reply, ours.headers, ours.data) == (theirs.reply, theirs.headers, theirs.data)
    finally:
        await publisher.close()
        await nc.close()
    with pytest.raises(ConnectionClosedError):
        await publisher.send("s.ours", "r.1", "m", b"x")


async def _true(value: bool) -> bool:
    return value


def _answer(data: bytes, headers: dict[str, str] | None = None) -> Msg:
    return Msg(None, subject="_INBOX.x.1", data=data, headers=headers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "msg, expected",
    [
        (_answer(b'{"stream":"EVENTS","seq":7}'), True),
        (_answer(b'{"stream":"EVENTS","seq":7,"duplicate":true}'), True),
        (_answer(b'{"error":{"code":503,"err_code":10077,"description":"x"}}'), False),
        (_answer(b"", {"Status": "503"}), False),
        (_answer(b"not json"), False),
    ],
)
def test_only_a_pub_ack_is_an_acknowledgement(msg: Msg, expected: bool) -> None:
    assert accepted(msg) is expected
