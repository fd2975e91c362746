"""The agent's completions publisher (runtime/pubacks.py): a publish returns once JetStream
has the message, once, whatever went wrong before: no stream yet, no answer in time, the
same message published again."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest

from runtime.embedded import NatsServer
from runtime.pubacks import AckedPublisher
from tests.helpers import wait_for


async def _stored(js: Any, stream: str, subject: str) -> tuple[int, bytes | None]:
    """How many messages ``stream`` holds on ``subject``, and the last one's data."""
    info = await js.stream_info(stream, subjects_filter=subject)
    last = await js.get_last_msg(stream, subject)
    return (info.state.subjects or {}).get(subject, 0), last.data


async def test_publish_retries_until_a_stream_takes_it_and_lands_once(
    nats_server: NatsServer,
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    publisher = AckedPublisher(nc, timeout=1.0)
    await publisher.start()
    # Something listens on the subject but never answers: the publish times out, and again.
    heard: list[bytes] = []

    async def silent(msg: Any) -> None:
        heard.append(msg.data)

    sub = await nc.subscribe("pubacks.one", cb=silent)
    try:
        first = asyncio.create_task(publisher.publish("pubacks.one", b"1", "m1"))
        await wait_for(lambda: _value(len(heard) >= 2), what="the publish tried twice")
        assert not first.done()
        await sub.unsubscribe()
        # Nothing listens any more: no responders, tried again; then the stream is there.
        await js.add_stream(name="PUBACKS", subjects=["pubacks.>"])
        await asyncio.wait_for(first, 60)
        # The same message again (an agent that died before acking its request): kept once.
        await asyncio.wait_for(publisher.publish("pubacks.one", b"1", "m1"), 60)
        await asyncio.wait_for(publisher.publish("pubacks.two", b"2", "m2"), 60)
        assert await _stored(js, "PUBACKS", "pubacks.one") == (1, b"1")
        assert await _stored(js, "PUBACKS", "pubacks.two") == (1, b"2")
    finally:
        publisher.close()
        await nc.close()


async def test_a_refused_publish_is_retried(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="tocsin.pubacks")
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    # At most one message: the second is refused (an error in the acknowledgement).
    await js.add_stream(name="FULL", subjects=["full.>"], max_msgs=1, discard="new")
    publisher = AckedPublisher(nc, timeout=5.0)
    await publisher.start()
    try:
        await asyncio.wait_for(publisher.publish("full.a", b"a", "a"), 60)
        second = asyncio.create_task(publisher.publish("full.b", b"b", "b"))
        await wait_for(lambda: _value(_refused(caplog)), what="the second publish refused")
        assert not second.done()
        await js.purge_stream("FULL")  # room again: the retry lands
        await asyncio.wait_for(second, 60)
        assert await _stored(js, "FULL", "full.b") == (1, b"b")
    finally:
        publisher.close()
        await nc.close()


async def _value(v: object) -> object:
    return v


def _refused(caplog: pytest.LogCaptureFixture) -> bool:
    return any("publish failed" in r.getMessage() for r in caplog.records)
