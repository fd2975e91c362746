"""Both pull fetches, the scheduler's (``runtime.pull``: nats-py's messages) and the
projector's (``runtime.framepull``: its parser's frames), answer like nats-py's: what the
consumer has now without waiting, else the first messages to come, a timeout when none comes,
an error when there is no such consumer; and every message exactly once, in order, across
batches, each with its stream sequence read from its ack subject."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import ServiceUnavailableError

from events.streams import EVENTS
from runtime import bus
from runtime.embedded import NatsServer
from runtime.framepull import Pull as FramesPull
from runtime.pull import BatchPull, stream_seq
from runtime.pull import Pull as MessagesPull
from tests.helpers import wait_for

PULLS = {"nats-py messages": MessagesPull, "the projector's frames": FramesPull}


@pytest.fixture(params=PULLS.values(), ids=PULLS.keys())
def pull_class(request: pytest.FixtureRequest) -> type[BatchPull[Any]]:
    return request.param  # type: ignore[no-any-return]


async def test_batches_hand_out_every_message_once_in_order(
    nats_server: NatsServer, pull_class: type[BatchPull[Any]]
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    await js.add_consumer("S", ConsumerConfig(durable_name="c", ack_policy=AckPolicy.ALL))
    for i in range(2_500):
        await js.publish(f"s.{i % 7}", str(i).encode())
    pull = await pull_class(nc, "S", "c").start()
    try:
        got: list[int] = []
        started = time.monotonic()
        while len(got) < 2_500:
            msgs = await pull.fetch(1_000, timeout=5)
            assert len(msgs) <= 1_000
            got += [int(m.data) for m in msgs]
            assert [stream_seq(m) for m in msgs] == [m.metadata.sequence.stream for m in msgs]
            await msgs[-1].ack()
        assert got == list(range(2_500))
        assert time.monotonic() - started < 5, "a backlog is handed out without waiting"

        # Nothing left: the fetch waits for the first new message, not for its timeout.
        later = asyncio.create_task(pull.fetch(1_000, timeout=5))
        await asyncio.sleep(0.3)
        await js.publish("s.x", b"late")
        msgs = await asyncio.wait_for(later, 4)
        assert [m.data for m in msgs] == [b"late"]
        await msgs[-1].ack()

        with pytest.raises(NatsTimeout):
            await pull.fetch(10, timeout=0.5)
    finally:
        await pull.close()
        await nc.close()


async def test_messages_with_headers_and_other_subscriptions_pass_alike(
    nats_server: NatsServer, pull_class: type[BatchPull[Any]]
) -> None:
    """The pull's frames are cut out of what the connection reads (``_Parser``): messages
    with headers (every service's ``Nats-Msg-Id``) are handed out as the others, and the
    connection's other subscriptions get theirs, headers included, as before."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    await js.add_consumer("S", ConsumerConfig(durable_name="c", ack_policy=AckPolicy.ALL))
    others: list[tuple[str, bytes, dict[str, str] | None]] = []

    async def other(msg: Msg) -> None:
        others.append((msg.subject, msg.data, msg.headers))

    await nc.subscribe("side.>", cb=other)
    pull = await pull_class(nc, "S", "c").start()
    try:
        for i in range(1_000):
            headers = {"Nats-Msg-Id": f"m{i}"} if i % 2 else None
            await js.publish(f"s.{i % 7}", str(i).encode(), headers=headers)
        got: list[int] = []
        sent = 0
        while len(got) < 1_000:
            await nc.publish("side.x", str(len(got)).encode(), headers={"K": "v"})
            sent += 1
            msgs = await pull.fetch(300, timeout=5)
            got += [int(m.data) for m in msgs]
            assert all(m.subject == f"s.{int(m.data) % 7}" for m in msgs)
            await msgs[-1].ack()
        assert got == list(range(1_000))
        assert msgs[-1].metadata.sequence.stream == 1_000

        async def all_others() -> bool:
            return len(others) >= sent

        await wait_for(all_others, what="the other subscription's messages")
        assert len(others) == sent
        assert all(s == "side.x" and h == {"K": "v"} for s, _, h in others)

        async def all_acked() -> bool:
            info = await js.consumer_info("S", "c")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_for(all_acked, what="every message acknowledged")
    finally:
        await pull.close()
        await nc.close()


async def test_a_missing_consumer_is_an_error_not_a_silent_wait(
    nats_server: NatsServer, pull_class: type[BatchPull[Any]]
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    pull = await pull_class(nc, "S", "nobody").start()
    try:
        with pytest.raises(ServiceUnavailableError):
            await pull.fetch(10, timeout=1)
    finally:
        await pull.close()
        await nc.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"Status": "408"},
        {"Status": "404", "Description": "No Messages"},
        {"Status": "503"},
        {"Status": "100", "Description": "Idle Heartbeat"},
    ],
    ids=["expired", "no messages", "no responders", "heartbeat"],
)
async def test_a_stored_message_that_looks_like_a_status_is_handed_out(
    nats_server: NatsServer, pull_class: type[BatchPull[Any]], headers: dict[str, str]
) -> None:
    """The server's own statuses (no messages, expired, heartbeat, no such consumer) come
    without a reply subject; a message of the stream always has one (its ack subject). One a
    publisher dressed as a status with a ``Status`` header (the server drops a status line a
    client writes) is a message like any other: handed out, to be decoded and refused by its
    reader, not taken for the end of the fetch and left to be delivered again and again."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    await js.add_consumer("S", ConsumerConfig(durable_name="c", ack_policy=AckPolicy.ALL))
    await js.publish("s.1", b"before")
    await js.publish("s.1", b"dressed", headers=headers)
    await js.publish("s.1", b"after")
    pull = await pull_class(nc, "S", "c").start()
    try:
        got: list[bytes] = []
        while len(got) < 3:
            got += [m.data for m in await pull.fetch(10, timeout=2)]
        assert got == [b"before", b"dressed", b"after"]
    finally:
        await pull.close()
        await nc.close()


@pytest.mark.parametrize("last_per_subject", [False, True], ids=["every message", "last of each"])
async def test_a_replay_hands_out_a_message_dressed_as_a_status(
    nats_server: NatsServer, last_per_subject: bool
) -> None:
    """``bus.replay`` (the services' reading of the log at start: the agents' last
    heartbeats, their hosts' figures, the verdicts) skipped a stored message with a
    ``Status`` header, nats-py's fetch taking it for the server's: an agent could hide its
    own last heartbeat from the notifier that way."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=EVENTS, subjects=["x.>"]))
    for status in ("408", "503", "404", "100"):
        await js.publish("x.1", b"a")
        await js.publish("x.2", status.encode(), headers={"Status": status})
        await js.publish("x.3", b"b")
    try:
        got = [m.data async for m in bus.replay(js, "x.>", last_per_subject=last_per_subject)]
        every = [b"a", b"408", b"b", b"a", b"503", b"b", b"a", b"404", b"b", b"a", b"100", b"b"]
        assert got == ([b"a", b"100", b"b"] if last_per_subject else every)
        assert (await js.streams_info())[0].state.consumer_count == 0, "its consumer removed"
    finally:
        await nc.close()


@pytest.mark.parametrize(
    "started, got, wait",
    [
        pytest.param(100.0, 7, 0.1, id="a-few-came-next-fetch-a-gather-later"),
        pytest.param(100.0, 500, 0.0, id="a-full-batch-a-backlog-at-once"),
        pytest.param(100.0, 0, 0.0, id="none-came-at-once"),
        pytest.param(100.0, 1, 0.1, id="one-came"),
    ],
)
def test_a_consumer_fetches_once_per_gather_only_while_messages_trickle_in(
    started: float, got: int, wait: float
) -> None:
    assert bus.gathered_until(started, got, 500, 0.1) - started == pytest.approx(wait)


async def test_a_puller_waits_the_gather_after_a_partial_batch_only() -> None:
    calls: list[float] = []

    class Fetcher:
        async def fetch(self, batch: int, timeout: float) -> list[int]:
            calls.append(time.monotonic())
            return [1] if len(calls) == 1 else list(range(batch))

    puller = bus.Puller(Fetcher(), "test", gather=0.2)
    assert await puller.fetch(10) == [1]  # partial: the next one waits out the gather
    assert len(await puller.fetch(10)) == 10
    assert calls[1] - calls[0] >= 0.2
