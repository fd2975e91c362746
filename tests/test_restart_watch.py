"""A restarted scheduler judges silence from when it started watching: its own downtime (a
`tocsin dev` stopped and started again) is not a host's silence nor a job's missed ping.

Each test plays the scheduler that stopped (its last verdict in the log, long ago), then the
one that starts: restored from the log, it judges nothing at once, and the silence once its
whole time has passed since it started watching."""

from __future__ import annotations

import time
from pathlib import Path

from checks.hostjudge import STALE_AFTER
from checks.judge import TaskState
from configuration import config as configuration
from events import codec, streams, subjects
from events.types import Judgement, TaskJudged
from runtime import bus
from services.scheduler.heartbeats import Heartbeats
from services.scheduler.hosts import HostJudging
from tests.helpers import write_config
from tests.test_heartbeats import EXPECTED, TASK
from tests.test_host_thresholds import _obs

INTERVAL = 10.0  # the figures' of _obs
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
        # The last figures, judged by the scheduler that stopped 25 s ago (2.5 intervals).
        subject = subjects.host_observed("web1", "default")
        data = codec.encode(_obs(time.time() - 25))
        ack = await js.publish(subject, data)
        await HostJudging(lambda: cfg)._observed(js, data, subject, ack.seq)
        assert await _severities(js, "h-web1") == ["ok"]

        restarted = HostJudging(lambda: cfg)
        await restarted.restore(js)
        await restarted._silent_hosts(js, time.time())
        assert await _severities(js, "h-web1") == ["ok"]
        # Still silent 1.5 intervals after the restart: unknown, saying how long in all.
        await restarted._silent_hosts(js, time.time() + STALE_AFTER * INTERVAL + 1)
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
