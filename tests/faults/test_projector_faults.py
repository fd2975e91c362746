"""The projector dies between its commit and its ack, again and again, while the log also
receives duplicate publishes: the read model still has every row exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import random

import nats

from events import streams, subjects
from runtime import bus
from tests.faults.harness import (
    Service,
    Services,
    count,
    js_call,
    projected_seq,
    quiesce_and_check,
)
from tests.helpers import wait_for

CRASHES = 5


async def _ack_floor(url: str) -> int:
    async def get(js):  # type: ignore[no-untyped-def]
        info = await js.consumer_info(streams.EVENTS, streams.PROJECTOR)
        return info.ack_floor.stream_seq

    return int(await js_call(url, get))


async def _republish_completions(url: str) -> int:
    """Publish every completion of the log again with its message id, as an agent retrying
    a publish whose acknowledgement it lost does; the stream must keep only the first."""
    nc = await bus.connect(url, "duplicator")
    js = nc.jetstream()
    n = 0
    try:
        async for msg in bus.replay(js, subjects.COMPLETED_ALL):
            ack = await js.publish(msg.subject, msg.data, headers=msg.headers)
            assert ack.duplicate, "a republished completion was stored twice"
            n += 1
    finally:
        await nc.close()
    return n


async def test_projector_killed_between_commit_and_ack(svc: Services):
    scheduler = svc.scheduler()
    agent = svc.agent("a1")

    # Completions in the log first, so that republishing them between crashes means something.
    async def completions_logged() -> int:
        try:
            return await _republish_completions(svc.nats_url)
        except nats.js.errors.NotFoundError:  # the scheduler has not created the streams yet
            return 0

    await wait_for(completions_logged, 30, what="completions in the log")
    projector: Service = svc.projector(crash_chance=0.3)
    between = 0
    duplicates = 0
    rng = random.Random(7)
    while between < CRASHES:
        try:
            await projector.wait(60)
        except TimeoutError:
            raise AssertionError("the projector never reached its crash point") from None
        # Killed after its commit and before its ack: the stored position is beyond what
        # the consumer saw acked, so the restarted projector gets events it already applied.
        if await projected_seq(svc.database_url) > await _ack_floor(svc.nats_url):
            between += 1
        duplicates += await _republish_completions(svc.nats_url)
        projector.start()
        if rng.random() < 0.5:  # and plain kill -9 at any moment, in between
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            if projector.alive:
                projector.kill()
                projector.start()
    assert duplicates > 0
    # The last incarnation folds without crashing, up to the end of the log.
    projector.kill()
    svc.projector()
    await wait_for(
        lambda: count(svc.database_url, "SELECT count(*) FROM results"), 30, what="results"
    )
    await quiesce_and_check(svc, [scheduler], [agent])


async def test_duplicate_msg_ids_are_stored_once(nats_server):
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, [])
    first = await js.publish("tocsin.agent.heartbeat.x", b"{}", headers={"Nats-Msg-Id": "m1"})
    again = await js.publish("tocsin.agent.heartbeat.x", b"{}", headers={"Nats-Msg-Id": "m1"})
    assert again.duplicate and again.seq == first.seq
    await nc.close()


async def test_events_delivered_to_a_dead_projector_are_not_acked_past(svc: Services):
    """Finding 2 of issue 10: events handed to a projector that died before committing
    them wait for redelivery (ack_wait); the next projector gets newer events first. Its
    AckAll must not acknowledge the older ones, nor its position pass them, unapplied."""
    scheduler = svc.scheduler()
    agent = svc.agent("a1")

    async def completions() -> int:
        n = 0
        with contextlib.suppress(nats.js.errors.NotFoundError):
            async for _ in _replay_completions(svc.nats_url):
                n += 1
        return n if n >= 5 else 0

    await wait_for(completions, 30, what="completions in the log")
    # A projector that fetched a batch and died: delivered, never acked nor committed.
    nc = await nats.connect(svc.nats_url)
    sub = await nc.jetstream().pull_subscribe_bind(durable=streams.PROJECTOR, stream=streams.EVENTS)
    taken = await sub.fetch(50, timeout=5)
    await nc.close()
    assert taken
    svc.projector()
    stats = await quiesce_and_check(svc, [scheduler], [agent])
    assert stats["results"] > 0


async def _replay_completions(url: str):  # type: ignore[no-untyped-def]
    nc = await nats.connect(url)
    try:
        async for msg in bus.replay(nc.jetstream(), subjects.COMPLETED_ALL):
            yield msg
    finally:
        await nc.close()
