"""Locations judged together, with real network isolation (tests/netlab.py): each location's
agent runs in its own network namespace, and the target is cut from one namespace by its
routes, then restored.

- One location cut from one site: a warning with each location's result recorded; the site
  cut from both: critical.
- One location cut from every site while another sees them healthy: that location is
  degraded, its results stop counting, one alert names it and why, no site alert; when the
  link is restored, one recovery.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from events import codec, streams, subjects
from events.types import TaskJudged
from runtime import bus
from tests import netlab
from tests.helpers import Stack, fetch, wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_service import Running

CONFIG = """
general:
  frequency: 1s
  ipv6: false
  timeout: 2s
  locations: [eu, us]
websites:
  - domain: {url}
    paths:
      - path: /healthy
        checks:
          - status-is: 200
"""


@pytest.fixture
async def lab(nats_server) -> AsyncIterator[netlab.NetLab]:
    lab = netlab.make(["eu", "us"], urlsplit(nats_server.url).port or 4222)
    try:
        await lab.start()
        yield lab
    finally:
        await lab.close()


async def _latest(nc: Client, task: str | None = None) -> tuple[str, dict[str, str]] | None:
    last = None
    try:
        await nc.jetstream().stream_info(streams.EVENTS)
    except NotFoundError:
        return None  # the scheduler has not created the log yet
    async for msg in bus.replay(nc.jetstream(), subjects.JUDGED_ALL):
        ev = codec.decode(msg.data, msg.subject)
        if not isinstance(ev, TaskJudged):
            continue
        for j in ev.judgements:
            if len(j.locations) == 2 and (task is None or j.task == task):
                last = j
    return (last.severity, dict(last.locations)) if last else None


async def test_one_location_cut_warns_both_cut_is_critical(
    nats_server, database_url, lab: netlab.NetLab, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", CONFIG.format(url=lab.url))
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler()
    stack.projector()
    await lab.agent("eu", "eu-1")
    await lab.agent("us", "us-1")
    nc = await nats.connect(nats_server.url)

    async def expect(wanted: tuple[str, dict[str, str]]) -> bool:
        return await _latest(nc) == wanted

    try:
        await wait_for(lambda: expect(("ok", {"eu": "ok", "us": "ok"})), 40, what="both ok")
        lab.cut("us")
        await wait_for(
            lambda: expect(("warning", {"eu": "ok", "us": "critical"})),
            40,
            what="a warning with eu ok and us cut off",
        )
        lab.cut("eu")
        await wait_for(
            lambda: expect(("critical", {"eu": "critical", "us": "critical"})),
            40,
            what="critical once both locations are cut off",
        )

        # The verdicts come from the log; the results from the projector, which may lag.
        async def locations() -> list:
            rows = await fetch(
                database_url, "SELECT DISTINCT location FROM results ORDER BY location"
            )
            return rows if len(rows) >= 2 else []

        rows = await wait_for(locations, what="results of both locations")
        assert [r["location"] for r in rows] == ["eu", "us"]
    finally:
        await nc.close()
        await stack.close()


DEGRADED = """
general:
  frequency: 1s
  ipv6: false
  timeout: 2s
  locations: [eu, us]
  quorum: 1                     # one failing location would be enough for critical
  retry_before_notification: 2
  alerts:
    ok: [webhook:ops]
    warning: [webhook:ops]
    critical: [webhook:ops]
    unknown: [webhook:ops]
    no_agent: [webhook:ops]
  webhooks:
    ops: {{url: "{hook}/hook/ops", secret: s}}
  degraded_location: {{min_tasks: 3, ratio: 0.5}}
websites:
  - domain: {url}
    paths:
      - {{path: /healthy, checks: [{{status-is: 200}}]}}
      - {{path: /api/status, checks: [{{status-is: 200}}]}}
      - {{path: /wrong-body, checks: [{{status-is: 200}}]}}
"""


async def test_a_location_cut_from_everything_is_degraded_not_the_sites(
    nats_server, database_url, lab: netlab.NetLab, tmp_path: Path
) -> None:
    hook = await HttpReceiver().start()
    config = write_config(tmp_path / "c.yaml", DEGRADED.format(url=lab.url, hook=hook.url))
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler()
    stack.projector()
    notifier = Running(nats_server.url, database_url, config)
    notifier.start()
    await lab.agent("eu", "eu-1")
    await lab.agent("us", "us-1")
    nc = await nats.connect(nats_server.url)

    def kinds() -> list[tuple[str, str | None]]:
        return [(c["json"]["kind"], c["json"]["group"]) for c in hook.calls]

    try:
        await wait_for(
            lambda: fetch(
                database_url,
                "SELECT 1 FROM tasks WHERE severity = 'ok' HAVING count(*) = 3",
            ),
            40,
            what="three sites ok",
        )
        lab.cut("us")
        await wait_for(lambda: asyncio.sleep(0, bool(hook.calls)), 40, what="an alert")
        # Every site stays ok: us no longer counts. Results from us are still recorded.
        await wait_for(
            lambda: fetch(
                database_url,
                "SELECT 1 FROM results WHERE location = 'us' AND status <> 'success' "
                "HAVING count(DISTINCT task_id) = 3",
            ),
            40,
            what="us failures recorded for every site",
        )
        await asyncio.sleep(4)  # more rounds: nothing else is said
        assert kinds() == [("location_degraded", "us")]
        (call,) = hook.calls
        assert re.match(
            r"[23] of 3 tasks fail from us while another location sees them ok",
            call["json"]["reason"],
        )
        severities = await fetch(database_url, "SELECT DISTINCT severity FROM tasks")
        assert [r["severity"] for r in severities] == ["ok"]
        lab.restore("us")
        await wait_for(lambda: asyncio.sleep(0, len(hook.calls) == 2), 40, what="the recovery")
        await asyncio.sleep(3)
        assert kinds() == [("location_degraded", "us"), ("location_healthy", "us")]
    finally:
        await nc.close()
        await notifier.stop()
        await stack.close()
        await hook.stop()
