"""The notifier outlives its PostgreSQL: a server restarted under it (a failover, an upgrade,
the OOM killer) is waited for, and the judgements of the log are taken up where they were."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import nats

from events import codec, streams, subjects
from events.types import Judgement, TaskJudged
from runtime.embedded import NatsServer, PostgresServer
from services.notifier.service import Notifier, NotifierOptions
from tests.helpers import wait_for, write_config

CONFIG = """
general:
  frequency: 1m
  alerts:
    ok: [local]
    warning: [local]
    critical: [local]
    unknown: [local]
websites:
  - domain: http://127.0.0.1:9
    paths:
      - path: /x
        checks:
          - status-is: 200
"""


async def test_a_restarted_postgresql_is_waited_for_and_judgements_taken_up(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    pg = PostgresServer(tmp_path / "pg").start()
    path = write_config(tmp_path / "c.yaml", CONFIG)
    notifier = Notifier(
        NotifierOptions(nats_server.url, pg.url, str(path), backoff=0.3, agent_check_every=0.2)
    )
    running = asyncio.create_task(notifier.run())
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), [])
    try:
        await _judge(nc, "t1")
        await wait_for(lambda: _recorded(pg.url, "t1"), what="the first judgement recorded")
        pg.stop()
        await asyncio.sleep(2)  # every loop of the notifier meets the server gone
        await _judge(nc, "t2")  # judged while PostgreSQL is away
        await asyncio.sleep(1)
        assert not running.done(), running.exception()
        pg.start()
        await wait_for(lambda: _recorded(pg.url, "t2"), timeout=60, what="taken up again")
        assert not running.done()
    finally:
        notifier.stop()
        await asyncio.wait_for(running, 30)
        await nc.close()
        pg.stop()


async def _judge(nc: nats.NATS, task: str) -> None:
    event = TaskJudged(
        at=time.time(),
        group="g",
        completion=0,
        next_run=time.time() + 60,
        judgements=[Judgement(task=task, severity="critical", previous="ok", reason="down")],
    )
    await nc.jetstream().publish(subjects.judged("g"), codec.encode(event))


async def _recorded(url: str, task: str) -> bool:
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        row = await conn.fetchrow("SELECT 1 FROM tocsin_notifier.task_state WHERE task = $1", task)
        return row is not None
    finally:
        await conn.close()
