"""A restarted scheduler judges silence from when it started watching: its own downtime (a
`tocsin dev` stopped and started again) is not a host's silence nor a job's missed ping.

Each test plays the scheduler that stopped (its last verdict in the log, long ago), then the
one that starts: restored from the log, it judges nothing at once, and the silence once its
whole time has passed since it started watching. A NATS outage is the same: nothing could be
heard meanwhile."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import msgspec

from checks.hostjudge import STALE_AFTER
from checks.judge import TaskState
from configuration import config as configuration
from events import codec, streams, subjects
from events.types import HostObserved, Judgement, TaskJudged
from runtime import bus
from runtime.embedded import NatsServer
from services.scheduler.heartbeats import Heartbeats
from services.scheduler.hosts import HostJudging
from tests.helpers import wait_for, write_config
from tests.test_heartbeats import EXPECTED, TASK
from tests.test_host_thresholds import _obs

GRACE = EXPECTED["grace"]
HOSTS = """
general: {frequency: 1m}
websites: []
hosts:
  cpu: {warning: 100}
  memory: false
  swap: false
  load: false
  disk: false
  inodes: false
"""


async def _land(js, obs: HostObserved) -> tuple[bytes, str, int, float]:
    """Publish ``obs`` to the log: what the scheduler's consumer is handed of it (its data,
    subject, stream sequence and when the log stored it)."""
    subject, data = subjects.host_observed(obs.agent, obs.location), codec.encode(obs)
    ack = await js.publish(subject, data)
    raw = await js.get_msg(streams.EVENTS, ack.seq)
    assert raw.time is not None
    return data, subject, ack.seq, raw.time.timestamp()


async def _severities(js, group: str) -> list[str]:
    found = []
    async for msg in bus.replay(js, subjects.judged(group)):
        ev = codec.decode(msg.data, msg.subject)
        assert isinstance(ev, TaskJudged)
        found += [j.severity for j in ev.judgements]
    return found


async def test_host_silent_while_the_scheduler_was_down_is_not_unknown_at_restart(
    nats_server, tmp_path: Path
):
    cfg = configuration.parse(write_config(tmp_path / "c.yaml", HOSTS))
    nc = await bus.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        # The last figures, judged by the scheduler that stopped since, 2.5 intervals ago (the
        # log's time is the one that counts: the test lets it pass).
        await HostJudging(lambda: cfg)._observed(js, *await _land(js, _obs(interval=1.0)))
        assert await _severities(js, "h-web1") == ["ok"]
        await asyncio.sleep(2.5)

        restarted = HostJudging(lambda: cfg)
        await restarted.restore(js)
        await restarted._silent_hosts(js, time.time())
        assert await _severities(js, "h-web1") == ["ok"]
        # Still silent 1.5 intervals after the restart: unknown, saying how long in all.
        await restarted._silent_hosts(js, time.time() + STALE_AFTER * 1.0 + 0.1)
        assert await _severities(js, "h-web1") == ["ok", "unknown"]
    finally:
        await bus.close(nc)


async def test_heartbeat_due_while_the_scheduler_was_down_gets_its_grace(nats_server):
    nc = await bus.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        # The stopped scheduler's last verdict: ok, the next ping due (grace included) 10 s
        # ago, while it was down.
        last = TaskJudged(
            at=time.time() - 100,
            group="g",
            completion=0,
            next_run=time.time() - 10,
            judgements=[Judgement("t", "ok", None, "ping received", 0)],
        )
        await js.publish(subjects.judged("g"), codec.encode(last))

        restarted = Heartbeats()
        restarted.configure([TASK], time.time())
        await restarted.restore(js)
        assert restarted.states["t"] == TaskState("ok", 0)
        await restarted._tick(js, time.time())
        assert await _severities(js, "g") == ["ok"]
        # No ping within the grace after the restart either: late.
        await restarted._tick(js, time.time() + GRACE)
        assert await _severities(js, "g") == ["ok", "critical"]
    finally:
        await bus.close(nc)


async def test_a_nats_outage_is_no_missed_ping(nats_server: NatsServer):
    """A NATS outage is like a scheduler restart: the web could not record a ping meanwhile,
    so a deadline that passed while NATS was away is judged one grace after it is back."""
    grace = 2.0
    task = msgspec.structs.replace(TASK, expected={**EXPECTED, "period": 1.0, "grace": grace})
    nc = await bus.connect(nats_server.url, "scheduler")
    stopping = asyncio.Event()
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        beats = Heartbeats()
        beats.configure([task], time.time())  # due in period + grace = 3 s
        running = asyncio.create_task(beats.run(nc, js, stopping))
        back = await nats_away(nats_server, 5)
        await wait_for(lambda: _judged(js, "g"), timeout=60, interval=0.5, what="late verdict")
        (late,) = await _judged(js, "g")
        assert late.judgements[0].severity == "critical"
        assert late.at >= back + grace, "judged over the time NATS was away"
        stopping.set()
        await running
    finally:
        stopping.set()
        await bus.close(nc)


async def nats_away(nats_server: NatsServer, seconds: float) -> float:
    """NATS killed, then started again ``seconds`` later: when it was started."""
    nats_server.stop(signal.SIGKILL)
    await asyncio.sleep(seconds)
    back = time.time()
    nats_server.start()
    return back


async def _judged(js, group: str) -> list[TaskJudged]:
    try:
        return [
            ev
            async for msg in bus.replay(js, subjects.judged(group))
            if isinstance(ev := codec.decode(msg.data, msg.subject), TaskJudged)
        ]
    except Exception as exc:
        if streams.transient(exc):
            return []  # NATS still starting
        raise
