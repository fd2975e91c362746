"""How an agent takes its location's work: one pull of a batch at a time (runtime/pull.py),
from an agent started before the scheduler made the work queue, and never more at once than
it has free slots for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from events import codec, streams, subjects
from events.types import CheckCompleted
from runtime import bus
from runtime.embedded import NatsServer
from services.agent.service import Agent, AgentOptions
from tests.helpers import DemoTarget, agent_running, wait_for
from tests.security_support import request_event


async def _queue_requests(js: JetStreamContext, url: str, count: int) -> None:
    """``count`` requests of location eu for ``url``, one group each, the streams made as
    the scheduler makes them."""
    await streams.ensure(js, ["eu"])
    for i in range(count):
        subject, data, msg_id = request_event("eu", f"g{i}", url)
        await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})


@contextlib.asynccontextmanager
async def _running(agent: Agent, nc: Client) -> AsyncIterator[asyncio.Task[None]]:
    """The agent running until the block ends, then stopped; the test's connection closed."""
    try:
        async with agent_running(agent) as task:
            yield task
    finally:
        await nc.close()


async def test_an_agent_started_before_its_work_queue_runs_what_comes_in_it(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    agent = Agent(AgentOptions(nats_server.url, "a1", location="eu", heartbeat=0.5, host=None))
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    async with _running(agent, nc) as task:
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


async def test_an_agent_holds_no_more_requests_than_its_slots(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    """Three slots, ten slow requests: three run, the other seven wait in the queue for any
    agent of the location (none is pulled and left waiting in this one)."""
    demo_target.set("slow", delay=2.0)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await _queue_requests(js, f"{demo_target.url}/slow", 10)
    agent = Agent(
        AgentOptions(nats_server.url, "a1", location="eu", concurrency=3, batch=2, host=None)
    )
    async with _running(agent, nc):

        async def three_running() -> bool:
            return len(agent.in_flight) == 3

        await wait_for(three_running, 20, what="three requests running")
        info = await js.consumer_info(streams.WORK, streams.agent_consumer_name("eu"))
        assert (info.num_ack_pending, info.num_pending) == (3, 7)

        async def all_done() -> bool:
            return agent.completed == 10

        await wait_for(all_done, 60, what="every request completed")


async def test_a_checks_slot_is_free_once_its_answer_is_in(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    """A completion waiting for JetStream (here: no stream takes it yet) no longer holds the
    check's slot: the next request runs meanwhile. As many completions as slots may wait so;
    past that, checks keep their slots and no more work is taken."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await _queue_requests(js, f"{demo_target.url}/healthy", 3)
    consumer = streams.agent_consumer_name("eu")

    async def queued() -> bool:  # the work queue is sourced from the log
        return (await js.consumer_info(streams.WORK, consumer)).num_pending == 3

    await wait_for(queued, 20, what="the requests in the work queue")
    await js.delete_stream(streams.EVENTS)  # completions are refused until it is back
    agent = Agent(AgentOptions(nats_server.url, "a1", location="eu", concurrency=1, host=None))
    async with _running(agent, nc):

        async def two_held() -> bool:
            info = await js.consumer_info(streams.WORK, consumer)
            return (info.num_ack_pending, info.num_pending) == (2, 1)

        # One completion waits, the second check's answer is in and waits for its turn.
        await wait_for(two_held, 20, what="two requests held, one left in the queue")
        await asyncio.sleep(1)
        assert await two_held() and agent.completed == 0 and len(agent.in_flight) == 2
        await streams.ensure(js, ["eu"])

        async def all_done() -> bool:
            return agent.completed == 3

        await wait_for(all_done, 30, what="every request completed")
        done = [m async for m in bus.replay(js, subjects.completed("a1", "eu", "*"))]
        assert len(done) == 3
