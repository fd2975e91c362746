"""The no-agent alert counts from when the notifier received an agent's heartbeat, not from the
time the agent wrote in it: an agent whose clock runs an hour fast does not switch the alert
off for an hour, one whose clock runs a minute slow still lowers it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events import codec, contract, streams
from events.types import AgentHeartbeat
from runtime import bus
from runtime.embedded import NatsServer
from tests.helpers import wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_service import Running

CONFIG = """
general:
  frequency: 1m
  alerts:
    no_agent: [apprise:team]
  apprise: {{team: ["json://127.0.0.1:{hook}/hook/team"]}}
recurring_tasks:
  time_without_agent: 2s
websites: []
"""


@pytest.fixture
async def hook() -> AsyncIterator[HttpReceiver]:
    r = await HttpReceiver().start()
    yield r
    await r.stop()


async def _beat(url: str, clock: float) -> None:
    """One heartbeat of agent a1, its clock ``clock`` seconds off."""
    beat = AgentHeartbeat(
        at=time.time() + clock,
        agent="a1",
        location="default",
        version="1",
        concurrency=1,
        in_flight=0,
        completed=0,
        started=time.time(),
    )
    nc = await bus.connect(url, "agent")
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        await js.publish(contract.subject_of(beat), codec.encode(beat))
    finally:
        await bus.close(nc)


def _titles(hook: HttpReceiver) -> list[str]:
    return [c["json"]["title"] for c in hook.calls]


async def _told(hook: HttpReceiver, n: int) -> bool:
    return len(hook.calls) >= n


@pytest.mark.parametrize(
    "replayed",
    [
        pytest.param(False, id="received-while-running"),
        pytest.param(True, id="replayed-at-start"),
    ],
)
async def test_a_clock_an_hour_ahead_does_not_hide_the_silence(
    nats_server: NatsServer, database_url: str, hook: HttpReceiver, tmp_path: Path, replayed
):
    path = write_config(tmp_path / "c.yaml", CONFIG.format(hook=hook.port))
    notifier = Running(nats_server.url, database_url, path)
    if replayed:
        await _beat(nats_server.url, 3600.0)
    notifier.start()
    try:
        if not replayed:
            await asyncio.sleep(0.5)  # subscribed to the heartbeats
            await _beat(nats_server.url, 3600.0)
        await wait_for(lambda: _told(hook, 1), what="the no-agent alert")
        assert "no agent" in _titles(hook)[0]
    finally:
        await notifier.stop()


async def test_a_clock_a_minute_behind_still_lowers_the_alert(
    nats_server: NatsServer, database_url: str, hook: HttpReceiver, tmp_path: Path
):
    path = write_config(tmp_path / "c.yaml", CONFIG.format(hook=hook.port))
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()
    try:
        await wait_for(lambda: _told(hook, 1), what="the no-agent alert")

        async def beating() -> bool:
            await _beat(nats_server.url, -60.0)
            return await _told(hook, 2)

        await wait_for(beating, interval=0.5, what="the agents back")
        assert "reporting again" in _titles(hook)[1]
    finally:
        await notifier.stop()
