"""An agent tells the live log of the runs someone watches, and only those: a group the web
followed before the agent started (the agent asks when it starts), a group it begins to
follow later (its announcement), never a group nobody follows. Until any watcher has spoken
(no web, or one without the permission to say), it tells every run, as before watchers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from events import control, streams, subjects
from runtime.embedded import NatsServer
from services.agent.service import Agent, AgentOptions
from services.agent.watched import Watched
from services.web.runlogs import RunLogs
from tests.helpers import DemoTarget, agent_running, flushed, wait_for
from tests.security_support import request_event


class Live:
    """A listener on every run-log line, a web's connection with its ``RunLogs``, and a way
    to send location eu a request of a group."""

    def __init__(self, nc: Client, web: Client, target: str) -> None:
        self.nc, self.web, self.target = nc, web, target
        self.told: list[control.LogLine] = []
        self.runlogs = RunLogs()

    async def line(self, msg: Any) -> None:
        self.told.append(control.decode_line(msg.data))

    async def request(self, group: str) -> None:
        subject, data, msg_id = request_event("eu", group, f"{self.target}/healthy")
        await self.nc.jetstream().publish(subject, data, headers={"Nats-Msg-Id": msg_id})

    def told_of(self, group: str) -> list[control.LogLine]:
        return [x for x in self.told if x.request.startswith(f"{group}.")]


@pytest.fixture
async def live(nats_server: NatsServer, demo_target: DemoTarget) -> AsyncIterator[Live]:
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), ["eu"])
    web = await nats.connect(nats_server.url)
    out = Live(nc, web, demo_target.url)
    await nc.subscribe(f"{subjects.LIVE_PREFIX}.>", cb=out.line)
    try:
        yield out
    finally:
        await out.runlogs.close()
        await web.close()
        await nc.close()


@contextlib.asynccontextmanager
async def running_agent(url: str) -> AsyncIterator[Agent]:
    agent = Agent(AgentOptions(url, "a1", location="eu", heartbeat=0.5, host=None))
    async with agent_running(agent):
        yield agent


async def test_agent_tells_only_the_runs_someone_watches(
    nats_server: NatsServer, live: Live
) -> None:
    await live.runlogs.follow(live.web, "g1")  # before the agent exists: it learns it by asking
    await flushed(live.web)
    async with running_agent(nats_server.url) as agent:
        await wait_for(lambda: _value("g1" in agent.watched), what="the agent told of g1")
        for group in ("g2", "g1"):  # g2: nobody watches it
            await live.request(group)
        await wait_for(lambda: _value(agent.completed == 2), what="both requests completed")
        await wait_for(lambda: _done(live.runlogs, "g1.eu.0"), what="g1's run told to the web")
        # Lines are published before the completion: g2's would have come by now.
        await flushed(live.nc)
        assert not live.told_of("g2")
        assert "g2" not in agent.watched

        await live.runlogs.follow(live.web, "g3")  # while the agent runs: it hears it said
        await wait_for(lambda: _value("g3" in agent.watched), what="the agent told of g3")
        await live.request("g3")
        await wait_for(lambda: _done(live.runlogs, "g3.eu.0"), what="g3's run told to the web")
        steps = [x.step for x in live.runlogs.lines["g3.eu.0"]]
        assert steps[0] == "start" and "response" in steps and steps[-1] == "done"


async def test_agent_tells_every_run_until_a_watcher_speaks(
    nats_server: NatsServer, live: Live
) -> None:
    """No web, or one without the permission to say what it follows: every run is told, as
    before watchers existed; once a watcher says it follows nothing, none is."""
    async with running_agent(nats_server.url) as agent:
        await live.request("g1")

        async def g1_told() -> bool:
            return any(x.step == "done" for x in live.told_of("g1"))

        await wait_for(g1_told, what="g1's run told with no watcher anywhere")

        await live.runlogs.start(live.web)  # a web starting that follows nothing says so
        await wait_for(lambda: _value(agent.watched.heard_any), what="the agent hearing it")
        await live.request("g2")
        await wait_for(lambda: _value(agent.completed == 2), what="both requests completed")
        await flushed(live.nc)
        assert not live.told_of("g2")


async def test_a_web_on_a_new_connection_answers_there(nats_server: NatsServer, live: Live) -> None:
    """The web's connection closed for good and opened again: agents asking which runs are
    followed get the answer on the new one (else they would tell every run)."""
    await live.runlogs.follow(live.web, "g1")
    await live.web.close()
    again = await nats.connect(nats_server.url)
    try:
        await live.runlogs.start(again)
        await flushed(again)
        watched = Watched()  # an agent starting, asking
        await watched.follow(live.nc)
        assert watched.heard_any and "g1" in watched
    finally:
        await live.runlogs.close()
        await again.close()


async def _value(v: object) -> object:
    return v


async def _done(runlogs: RunLogs, request: str) -> bool:
    return any(x.step == "done" for x in runlogs.lines.get(request, ()))
