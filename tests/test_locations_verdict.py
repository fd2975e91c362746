"""Two locations watching one site, judged together by the running scheduler: one location
failing gives a warning, both failing give critical, with each location's result recorded."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import nats
from nats.aio.client import Client

from events import codec, streams, subjects
from events.types import CheckCompleted, CheckOutcome, CheckRequested, Observation, TaskJudged
from runtime import bus
from tests.helpers import DemoTarget, Stack, fetch, wait_for, write_config

CONFIG = """
general:
  frequency: 1s
  ipv6: false
  timeout: 3s
  locations: [eu, us]
websites:
  - domain: {url}
    paths:
      - path: /healthy
        checks:
          - status-is: 200
"""


async def _site_down_from_us(nc: Client, stop: asyncio.Event) -> None:
    """An agent of location ``us`` whose network cannot reach the site: it pulls its work
    from the real WORK consumer and reports a connection failure, as a real agent there would
    (both real agents here share one loopback, so only this one can be made to fail alone)."""
    js = nc.jetstream()
    sub = await js.pull_subscribe_bind(
        durable=streams.agent_consumer_name("us"), stream=streams.WORK
    )
    while not stop.is_set():
        try:
            msgs = await sub.fetch(10, timeout=0.5)
        except Exception:
            continue
        for msg in msgs:
            req = codec.decode(msg.data, msg.subject)
            assert isinstance(req, CheckRequested)
            done = CheckCompleted(
                at=time.time(),
                request=req.request,
                group=req.group,
                agent="us-1",
                location="us",
                started=time.time(),
                observation=Observation(error="connection refused", error_kind="connect"),
                outcomes=[
                    CheckOutcome(c.task, c.kind, "failure", "connection refused")
                    for c in req.checks
                ],
            )
            await js.publish(
                subjects.completed("us-1", req.group),
                codec.encode(done),
                headers={"Nats-Msg-Id": f"completed.{req.request}"},
            )
            await msg.ack()


async def _latest_verdict(nc: Client) -> tuple[str, dict[str, str]] | None:
    last = None
    async for msg in bus.replay(nc.jetstream(), subjects.JUDGED_ALL):
        ev = codec.decode(msg.data, msg.subject)
        if isinstance(ev, TaskJudged) and ev.judgements and len(ev.judgements[0].locations) == 2:
            last = ev.judgements[0]
    return (last.severity, dict(last.locations)) if last else None


async def test_one_location_failing_warns_both_failing_is_critical(
    nats_server, database_url, demo_target: DemoTarget, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", CONFIG.format(url=demo_target.url))
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler()
    stack.projector()
    eu = stack.agent("eu-1", location="eu")
    nc = await nats.connect(nats_server.url)
    stop = asyncio.Event()
    us_down = None
    try:
        await wait_for(lambda: _consumer_exists(nc, "us"), what="the us work consumer")
        us_down = asyncio.create_task(_site_down_from_us(nc, stop))
        one = await wait_for(
            lambda: _expect(nc, ("warning", {"eu": "ok", "us": "critical"})),
            30,
            what="a warning with eu ok and us failing",
        )
        assert one

        # Now the site itself goes down, seen by real agents in both locations.
        stop.set()
        await us_down
        stack.agent("us-2", location="us")
        demo_target.set("healthy", status=503)
        await wait_for(
            lambda: _expect(nc, ("critical", {"eu": "critical", "us": "critical"})),
            30,
            what="critical once both locations fail",
        )

        # Each location's result is in the read model.
        rows = await wait_for(
            lambda: fetch(database_url, "SELECT DISTINCT location FROM results ORDER BY location"),
            what="results per location",
        )
        assert [r["location"] for r in rows] == ["eu", "us"]
    finally:
        stop.set()
        if us_down:
            with contextlib.suppress(Exception):
                await us_down
        await nc.close()
        await stack.close()
    assert eu.completed > 0


async def _consumer_exists(nc: Client, location: str) -> bool:
    try:
        await nc.jetstream().consumer_info(streams.WORK, streams.agent_consumer_name(location))
    except Exception:
        return False
    return True


async def _expect(nc: Client, wanted: tuple[str, dict[str, str]]) -> bool:
    return await _latest_verdict(nc) == wanted
