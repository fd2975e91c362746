"""A request slower than JetStream's ack wait is kept by its agent, not redelivered: one loop
tells JetStream, for every request held, that it is still in progress. A run says it started
once it has run a while; a quick one says it in its completion alone."""

from __future__ import annotations

import asyncio

import nats
from nats.js.api import ConsumerInfo
from nats.js.client import JetStreamContext

from events import codec, streams, subjects
from events.types import CheckCompleted, CheckStarted
from runtime import bus
from runtime.embedded import NatsServer
from services.agent.service import Agent, AgentOptions
from services.agent.starts import SAY_STARTED_AFTER
from services.web.runlogs import RunLogs
from tests.helpers import DemoTarget, flushed, wait_for
from tests.security_support import request_event


async def test_slow_requests_are_kept_not_redelivered(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    demo_target.set("slow", delay=3.0)  # three times the ack wait
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["eu"], streams.Tuning(ack_wait=1.0))
    for group in ("g1", "g2", "g3"):
        subject, data, msg_id = request_event("eu", group, f"{demo_target.url}/slow")
        await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    agent = Agent(
        AgentOptions(nats_server.url, "a1", location="eu", heartbeat=0.5, in_progress_every=0.4)
    )
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: _value(agent.completed == 3), 30, what="three completions")
        completed = [m async for m in bus.replay(js, subjects.completed("a1", "eu", "*"))]
        started = [m async for m in bus.replay(js, subjects.started("a1", "eu", "*"))]
        done = [codec.decode(m.data, m.subject) for m in completed]
        assert all(isinstance(d, CheckCompleted) for d in done) and len(done) == 3
        runs = [codec.decode(m.data, m.subject) for m in started]
        # Each request ran once, at its first delivery: none came back after the ack wait.
        seen = sorted((r.group, r.delivery) for r in runs if isinstance(r, CheckStarted))
        assert seen == [("g1", 1), ("g2", 1), ("g3", 1)]
        # Said a second into the run, dated when it began (not when it was said).
        began = {d.group: d.started for d in done if isinstance(d, CheckCompleted)}
        assert all(r.at <= began[r.group] for r in runs if isinstance(r, CheckStarted))
        # The server applies acks asynchronously: wait for them, then nothing redelivered.
        info = await wait_for(lambda: _settled(js), what="every request acked")
        assert info.num_redelivered == 0
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)
        await nc.close()


async def _value(v: object) -> object:
    return v


async def _settled(js: JetStreamContext) -> ConsumerInfo | None:
    info = await js.consumer_info(streams.WORK, "agents-eu")
    return info if info.num_ack_pending == 0 else None


async def test_a_quick_run_publishes_no_start(nats_server: NatsServer, demo_target: DemoTarget):
    # A check.started per check was a quarter of what the log, NATS and the projector carry
    # per check, for a "running" nobody could see in a run of milliseconds.
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["eu"])
    subject, data, msg_id = request_event("eu", "g1", f"{demo_target.url}/healthy")
    await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    # A web with no live page open: the agent tells no run (with no web it tells every one).
    web = RunLogs()
    await web.start(nc)
    await flushed(nc)
    agent = Agent(AgentOptions(nats_server.url, "a1", location="eu"))
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: _value(agent.completed == 1), 30, what="the completion")
        await asyncio.sleep(SAY_STARTED_AFTER)  # past the time a start would have been said
        started = [m async for m in bus.replay(js, subjects.started("a1", "eu", "*"))]
        assert started == []
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)
        await web.close()
        await nc.close()
