"""A link that drops mid-check loses nothing: NATS stops while the agent waits on a slow
site, comes back, and the result is in the log exactly once, the request acked."""

from __future__ import annotations

import asyncio

import nats
from nats.aio.client import Client as NATS

from events import codec, streams, subjects
from events.types import CheckCompleted
from runtime import backoff, bus
from runtime.embedded import NatsServer
from services.agent.service import Agent, AgentOptions
from tests.helpers import DemoTarget, wait_for
from tests.security_support import request_event


def test_backoff_grows_is_capped_and_jittered() -> None:
    firsts = {round(backoff.delay(0), 4) for _ in range(20)}
    assert len(firsts) > 1 and all(0.125 <= d <= 0.25 for d in firsts)
    assert all(5.0 <= backoff.delay(30) <= 10.0 for _ in range(20))
    assert backoff.delay(3) > backoff.delay(0)


async def test_link_cut_mid_check_loses_nothing(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    demo_target.set("slow", delay=4.0)
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), ["eu"])
    subject, data, msg_id = request_event("eu", "g1", f"{demo_target.url}/slow")
    await nc.jetstream().publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    await nc.close()

    agent = Agent(
        AgentOptions(nats_server.url, "a1", location="eu", heartbeat=0.5, in_progress_every=0.5)
    )
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: _value(bool(agent.in_flight)), what="the check in flight")
        nats_server.stop()  # the link drops while the site is still answering
        await asyncio.sleep(6)  # the check finishes with nowhere to publish
        assert agent.completed == 0 and agent.in_flight
        nats_server.start()
        await wait_for(lambda: _value(agent.completed == 1), 30, what="the completion acked")

        nc = await nats.connect(nats_server.url)
        done = [m async for m in bus.replay(nc.jetstream(), subjects.completed("a1", "eu", "g1"))]
        assert len(done) == 1
        ev = codec.decode(done[0].data, done[0].subject)
        assert isinstance(ev, CheckCompleted) and ev.outcomes[0].status == "success"
        # The server applies acks asynchronously.
        await wait_for(lambda: _drained(nc), what="the work consumer drained")
        await nc.close()
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)


async def _value(v: object) -> object:
    return v


async def _drained(nc: NATS) -> bool:
    info = await nc.jetstream().consumer_info(streams.WORK, "agents-eu")
    return info.num_pending == 0 and info.num_ack_pending == 0
