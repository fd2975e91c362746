"""The rebuild's feed process (``services.projector.feed``) hands the rebuild what the
projector's own decoding makes of the log, and a feed that fails fails the rebuild."""

from __future__ import annotations

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from events import codec, contract, streams
from events.types import AgentHeartbeat, HostObserved
from runtime.embedded import NatsServer
from runtime.framepull import Pull
from services.projector.decoding import Batch, decode_batch
from services.projector.feed import Feed
from services.projector.fold import Undecodable
from services.projector.liveness import Heard
from tests.test_events import SAMPLES

CONFIG = ConsumerConfig(filter_subject=">", ack_policy=AckPolicy.NONE, max_ack_pending=-1)


async def test_the_feed_decodes_the_log_as_the_projector_does(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=streams.EVENTS, subjects=["tocsin.>"]))
    messages = [(contract.subject_of(e), codec.encode(e)) for e in SAMPLES]
    messages.insert(3, ("tocsin.check.completed.a1.default.g1", b"\x00 not an event"))
    messages.insert(5, (messages[1][0], messages[1][1].replace(b'"', b"'", 1)))
    for subject, data in messages:
        await js.publish(subject, data)
    for name in ("fed", "pulled"):
        await js.add_consumer(streams.EVENTS, ConsumerConfig(name=name, **CONFIG.as_dict()))
    feed = await Feed(nats_server.url, "fed", len(messages), 4).start()
    fed: Batch = []
    try:
        while (got := await feed.next()) is not None:
            fed += got[1]
    finally:
        await feed.close()
    pull = await Pull(nc, streams.EVENTS, "pulled").start()
    try:
        expected = await decode_batch(await pull.fetch(len(messages), timeout=10))
    finally:
        await pull.close()
        await nc.close()
    assert [seq for seq, _ in fed] == list(range(1, len(messages) + 1))
    assert len(fed) == len(expected)
    for (seq, ev), (want_seq, want) in zip(fed, expected, strict=True):
        assert seq == want_seq and type(ev) is type(want)
        if hasattr(want, "__struct_config__"):
            assert codec.encode(ev) == codec.encode(want)  # type: ignore[arg-type]
        else:
            # The same Undecodable (the same dead letter); a heartbeat or host figures with
            # the same time of reception.
            assert ev == want
    assert sum(isinstance(ev, Undecodable) for _, ev in fed) == 2
    liveness = [e for e in SAMPLES if isinstance(e, AgentHeartbeat | HostObserved)]
    assert sum(isinstance(ev, Heard) for _, ev in fed) == len(liveness) > 0


async def test_a_feed_that_fails_fails_the_rebuild(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    await nc.jetstream().add_stream(StreamConfig(name=streams.EVENTS, subjects=["tocsin.>"]))
    await nc.close()
    feed = await Feed(nats_server.url, "no-such-consumer", 10, 4).start()
    try:
        with pytest.raises(RuntimeError, match="feed process ended"):
            await feed.next()
    finally:
        await feed.close()
