"""An agent and a projector stop once asked, leaving nothing of theirs running: not a loop
whose cancellation was dropped (``tests/test_scheduler_stop.py`` tells how), nor an agent's
completion waiting for a NATS that went away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
from nats.js import JetStreamContext

from events import streams
from runtime import bus
from runtime.embedded import NatsServer
from services.agent.service import Agent, AgentOptions
from services.projector.service import Projector, ProjectorOptions
from tests.helpers import DemoTarget, dropping_one_cancellation, ended, wait_for
from tests.security_support import request_event


class _Dropping:
    """One of its loops drops the cancellation that ends it (``loop``, once it runs)."""

    loop: asyncio.Task[object] | None = None

    async def _dropping(self, run: Callable[[], Awaitable[None]]) -> None:
        self.loop = asyncio.current_task()
        await dropping_one_cancellation(run)


class _HeartbeatsDropTheStop(_Dropping, Agent):
    async def _heartbeats(self, js: JetStreamContext) -> None:
        heartbeats = super()._heartbeats
        await self._dropping(lambda: heartbeats(js))


class _PruningDropsTheStop(_Dropping, Projector):
    async def _prune(self, js: JetStreamContext) -> None:
        prune = super()._prune
        await self._dropping(lambda: prune(js))


async def test_an_agent_stops_with_nothing_of_it_running(nats_server: NatsServer) -> None:
    opts = AgentOptions(nats_server.url, "a1", heartbeat=0.2, host=None)
    await _stops_with_its_loop(_HeartbeatsDropTheStop(opts))


async def test_an_agent_stops_while_nats_is_away_with_a_completion_unpublished(
    nats_server: NatsServer, demo_target: DemoTarget
) -> None:
    """Its request, unacknowledged, comes back to another agent once NATS is back."""
    demo_target.set("slow", delay=1.0)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["eu"], streams.Tuning())
    subject, data, msg_id = request_event("eu", "g1", f"{demo_target.url}/slow")
    await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    await nc.close()
    agent = Agent(AgentOptions(nats_server.url, "a1", location="eu", host=None))
    running = asyncio.create_task(agent.run())
    await wait_for(lambda: _value(agent.in_flight), what="the check running")
    nats_server.stop()  # away before the check's answer is in
    agent.stop()
    await ended(running)
    assert agent.completed == 0


async def test_a_projector_stops_with_nothing_of_it_running(
    nats_server: NatsServer, database_url: str
) -> None:
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), [], streams.Tuning())
    await nc.close()
    await _stops_with_its_loop(
        _PruningDropsTheStop(ProjectorOptions(nats_server.url, database_url))
    )


async def _stops_with_its_loop(service: _HeartbeatsDropTheStop | _PruningDropsTheStop) -> None:
    """``service`` run, then stopped once its loop that drops a cancellation runs: that loop
    has ended when ``run`` returns."""
    running = asyncio.create_task(service.run())
    await wait_for(lambda: _value(service.loop), what="the loop running")
    await asyncio.sleep(0.5)  # a few turns of it
    service.stop()
    await ended(running)
    assert service.loop is not None and service.loop.done()


async def test_a_connection_closes_quietly_while_nats_is_away(nats_server: NatsServer) -> None:
    """What was published meanwhile is pending: it cannot be written, and that is no error."""
    nc = await bus.connect(nats_server.url, "test")
    nats_server.stop()
    await wait_for(lambda: _value(not nc.is_connected), what="the connection lost")
    await nc.publish("tocsin.test", b"pending")
    await bus.close(nc)
    assert nc.is_closed


async def _value(v: object) -> object:
    return v
