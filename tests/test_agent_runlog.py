"""An agent tells the live log of the runs someone watches, and only those: a group the web
followed before the agent started (the agent asks when it starts), a group it begins to
follow later (its announcement), never a group nobody follows."""

from __future__ import annotations

import asyncio
from typing import Any

import nats

from events import control, streams, subjects
from runtime.embedded import NatsServer
from services.agent.service import Agent, AgentOptions
from services.web.runlogs import RunLogs
from tests.helpers import DemoTarget, wait_for
from tests.security_support import request_event


async def test_agent_tells_only_the_runs_someone_watches(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["eu"])
    told: list[control.LogLine] = []

    async def line(msg: Any) -> None:
        told.append(control.decode_line(msg.data))

    await nc.subscribe(f"{subjects.LIVE_PREFIX}.>", cb=line)
    web = await nats.connect(nats_server.url)
    runlogs = RunLogs()
    await runlogs.follow(web, "g1")  # before the agent exists: it learns it by asking
    await web.flush()
    agent = Agent(AgentOptions(nats_server.url, "a1", location="eu", heartbeat=0.5, host=None))
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: _value("g1" in agent.watched), what="the agent told of g1")
        for group in ("g2", "g1"):  # g2: nobody watches it
            subject, data, msg_id = request_event("eu", group, f"{demo_target.url}/healthy")
            await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
        await wait_for(lambda: _value(agent.completed == 2), what="both requests completed")
        await wait_for(lambda: _done(runlogs, "g1.eu.0"), what="g1's run told to the web")
        # Lines are published before the completion: g2's would have come by now.
        await nc.flush()
        assert not [x for x in told if x.request.startswith("g2.")]
        assert "g2" not in agent.watched

        await runlogs.follow(web, "g3")  # while the agent runs: it hears the announcement
        await wait_for(lambda: _value("g3" in agent.watched), what="the agent told of g3")
        subject, data, msg_id = request_event("eu", "g3", f"{demo_target.url}/healthy")
        await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
        await wait_for(lambda: _done(runlogs, "g3.eu.0"), what="g3's run told to the web")
        steps = [x.step for x in runlogs.lines["g3.eu.0"]]
        assert steps[0] == "start" and "response" in steps and steps[-1] == "done"
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)
        await runlogs.close()
        await web.close()
        await nc.close()


async def test_agent_tells_every_run_until_a_watcher_speaks(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    """No web, or one without the permission to say what it follows: every run is told, as
    before watchers existed; once a watcher says it follows nothing, none is."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["eu"])
    told: list[control.LogLine] = []

    async def line(msg: Any) -> None:
        told.append(control.decode_line(msg.data))

    await nc.subscribe(f"{subjects.LIVE_PREFIX}.>", cb=line)
    agent = Agent(AgentOptions(nats_server.url, "a1", location="eu", heartbeat=0.5, host=None))
    task = asyncio.create_task(agent.run())
    web = await nats.connect(nats_server.url)
    runlogs = RunLogs()
    try:
        subject, data, msg_id = request_event("eu", "g1", f"{demo_target.url}/healthy")
        await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})

        async def g1_told() -> bool:
            return any(x.request == "g1.eu.0" and x.step == "done" for x in told)

        await wait_for(g1_told, what="g1's run told with no watcher anywhere")

        await runlogs.start(web)  # a web starting that follows nothing says so at once
        await wait_for(lambda: _value(agent.watched.heard_any), what="the agent hearing it")
        subject, data, msg_id = request_event("eu", "g2", f"{demo_target.url}/healthy")
        await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
        await wait_for(lambda: _value(agent.completed == 2), what="both requests completed")
        await nc.flush()
        assert not [x for x in told if x.request.startswith("g2.")]
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)
        await runlogs.close()
        await web.close()
        await nc.close()


async def _value(v: object) -> object:
    return v


async def _done(runlogs: RunLogs, request: str) -> bool:
    return any(x.step == "done" for x in runlogs.lines.get(request, ()))
