"""How an agent takes its location's work: one pull of a batch at a time (runtime/pull.py),
from an agent started before the scheduler made the work queue, and never more at once than
it has free slots for."""

from __future__ import annotations

import asyncio

import nats

from events import codec, streams, subjects
from events.types import CheckCompleted
from runtime import bus
from runtime.embedded import NatsServer
from services.agent.service import Agent, AgentOptions
from tests.helpers import DemoTarget, wait_for
from tests.security_support import request_event


async def test_an_agent_started_before_its_work_queue_runs_what_comes_in_it(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    agent = Agent(AgentOptions(nats_server.url, "a1", location="eu", heartbeat=0.5, host=None))
    task = asyncio.create_task(agent.run())
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await asyncio.sleep(2)  # the agent asks for work that has no queue yet
        assert not task.done()
        await streams.ensure(js, ["eu"])  # as the scheduler does when it starts
        subject, data, msg_id = request_event("eu", "g1", f"{demo_target.url}/healthy")
        await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})

        async def completed() -> bool:
            return agent.completed == 1

        await wait_for(completed, 30, what="the request completed")
        done = [m async for m in bus.replay(js, subjects.completed("a1", "eu", "*"))]
        assert len(done) == 1
        event = codec.decode(done[0].data, done[0].subject)
        assert isinstance(event, CheckCompleted) and event.outcomes[0].status == "success"
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)
        await nc.close()


async def test_an_agent_holds_no_more_requests_than_its_slots(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    """Three slots, ten slow requests: three run, the other seven wait in the queue for any
    agent of the location (none is pulled and left waiting in this one)."""
    demo_target.set("slow", delay=2.0)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["eu"])
    for i in range(10):
        subject, data, msg_id = request_event("eu", f"g{i}", f"{demo_target.url}/slow")
        await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    agent = Agent(
        AgentOptions(nats_server.url, "a1", location="eu", concurrency=3, batch=2, host=None)
    )
    task = asyncio.create_task(agent.run())
    try:

        async def three_running() -> bool:
            return len(agent.in_flight) == 3

        await wait_for(three_running, 20, what="three requests running")
        info = await js.consumer_info(streams.WORK, streams.agent_consumer_name("eu"))
        assert (info.num_ack_pending, info.num_pending) == (3, 7)

        async def all_done() -> bool:
            return agent.completed == 10

        await wait_for(all_done, 60, what="every request completed")
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)
        await nc.close()
