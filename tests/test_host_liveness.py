"""A host's silence is judged from when the log received its figures, and only from what the
scheduler has read of the log while connected to it.

- Its agent's clock is its own: figures dated an hour ahead do not keep a host "alive", figures
  dated a minute behind do not make it "silent".
- Older figures landing after newer ones (a replay, a late delivery) are not the latest: they
  neither make the host silent nor are judged over the newer ones.
- Figures in the log that this scheduler has not read yet (its consumer catching up after a
  reconnect) are not a silence.
- A NATS outage is no host's silence: after the reconnect the host has its whole time again,
  as after a scheduler restart.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from checks.hostjudge import STALE_AFTER
from configuration import config as configuration
from events import streams
from runtime import bus
from runtime.embedded import NatsServer
from services.scheduler.hosts import HostJudging
from tests.helpers import wait_for, write_config
from tests.test_host_thresholds import _obs
from tests.test_restart_watch import HOSTS, _judged, _land, nats_away
from tests.test_restart_watch import _severities as _severities_of

INTERVAL = 10.0  # the figures' of _obs
LIMIT = STALE_AFTER * INTERVAL


async def _severities(js) -> list[str]:
    return await _severities_of(js, "h-web1")


@pytest.fixture
async def js(nats_server: NatsServer):
    nc = await bus.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        yield js
    finally:
        await bus.close(nc)


@pytest.fixture
def judging(tmp_path: Path) -> HostJudging:
    cfg = configuration.parse(write_config(tmp_path / "c.yaml", HOSTS))
    judging = HostJudging(lambda: cfg)
    judging.watched_from = 0.0  # watching for long: only the host's own silence counts
    return judging


@pytest.mark.parametrize(
    ("ahead", "later", "severities"),
    [
        # The host reported just now, its clock an hour fast: still silent once LIMIT passes.
        pytest.param(3600.0, LIMIT + 1, ["ok", "unknown"], id="clock-an-hour-ahead-silent-later"),
        # Its clock a minute slow: figures that just landed are no silence.
        pytest.param(-60.0, 0.0, ["ok"], id="clock-a-minute-behind-not-silent-now"),
        pytest.param(-60.0, LIMIT - 1, ["ok"], id="clock-a-minute-behind-not-silent-yet"),
    ],
)
async def test_silence_counts_from_when_the_log_received_the_figures(
    js, judging: HostJudging, ahead, later, severities
):
    landed = await _land(js, _obs(time.time() + ahead))
    await judging._observed(js, *landed)
    await judging._silent_hosts(js, time.time() + later)
    assert await _severities(js) == severities
    # The figures are judged as of when they were taken, never after the log received them.
    first = (await _judged(js, "h-web1"))[0]
    assert first.at <= landed[-1]


@pytest.mark.parametrize(
    "older_by",
    [
        pytest.param(540.0, id="replayed-nine-minutes-old"),
        pytest.param(2 * INTERVAL, id="late-by-two-intervals"),
    ],
)
async def test_older_figures_landing_later_are_not_the_latest(js, judging: HostJudging, older_by):
    now = time.time()
    await judging._observed(js, *await _land(js, _obs(now)))
    # Judged, the older figures would make a verdict of their own, over the newer ones.
    await judging._observed(js, *await _land(js, _obs(now - older_by)))
    await judging._silent_hosts(js, time.time())
    assert await _severities(js) == ["ok"]  # neither silent nor judged again
    # The newer figures still date the silence: it comes LIMIT after they landed.
    await judging._silent_hosts(js, time.time() + LIMIT + 1)
    assert await _severities(js) == ["ok", "unknown"]


async def test_figures_in_the_log_not_read_yet_are_no_silence(js, judging: HostJudging):
    await judging._observed(js, *await _land(js, _obs(time.time())))
    # Newer figures are in the log; this scheduler's consumer has not handed them yet (it is
    # catching up after a reconnect): the host is not silent, the scheduler is behind.
    await _land(js, _obs(time.time() + 1))
    await judging._silent_hosts(js, time.time() + LIMIT + 1)
    assert await _severities(js) == ["ok"]


async def test_a_nats_outage_is_no_host_silence(nats_server: NatsServer, tmp_path: Path):
    """NATS killed and started again after longer than the host's limit: the host (whose agent
    does not come back, to see the verdict come) is unknown only LIMIT after NATS is back."""
    cfg = configuration.parse(write_config(tmp_path / "c.yaml", HOSTS))
    nc = await bus.connect(nats_server.url, "scheduler")
    stopping = asyncio.Event()
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        running = asyncio.create_task(HostJudging(lambda: cfg).run(nc, js, stopping))

        async def judged() -> list[str]:
            # Figures landing while it restores are taken as seen, not judged: again until.
            await _land(js, _obs(time.time()))
            return await _severities(js)

        await wait_for(judged, interval=0.5, what="the figures judged")
        back = await nats_away(nats_server, LIMIT + 2)
        await wait_for(
            lambda: _has_unknown(js), timeout=LIMIT + 30, interval=0.5, what="silence judged"
        )
        unknown = (await _judged(js, "h-web1"))[-1]
        assert unknown.at >= back + LIMIT, "judged over the time NATS was away"
        stopping.set()
        await running
    finally:
        stopping.set()
        await bus.close(nc)


async def _has_unknown(js) -> bool:
    return any(j.severity == "unknown" for v in await _judged(js, "h-web1") for j in v.judgements)
