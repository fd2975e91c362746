"""NATS, then PostgreSQL, stopped and started again on the same store mid-run: every service
reconnects and resumes, and the counts still match."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.embedded import NatsServer, PostgresServer
from tests.faults.conftest import PATHS
from tests.faults.harness import Services, config_body, count, quiesce_and_check
from tests.helpers import DemoTarget, wait_for


@pytest.fixture
async def own_pg(tmp_path: Path) -> AsyncIterator[PostgresServer]:
    """A PostgreSQL of this test alone: it is stopped and started again."""
    server = PostgresServer(tmp_path / "pg").start()
    yield server
    server.stop()


async def _grows(svc: Services, what: str) -> None:
    n = await count(svc.database_url, "SELECT count(*) FROM results")
    await wait_for(lambda: _more(svc, n + 40), 60, what=what)


async def _more(svc: Services, n: int) -> bool:
    return await count(svc.database_url, "SELECT count(*) FROM results") >= n


async def test_nats_then_postgres_restart(
    nats_server: NatsServer, own_pg: PostgresServer, target: DemoTarget, tmp_path: Path
):
    config = tmp_path / "tocsin.yaml"
    config.write_text(config_body(target.url, PATHS))
    (tmp_path / "logs").mkdir()
    svc = Services(nats_server.url, own_pg.url, config, tmp_path / "logs")
    try:
        procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]
        await _grows(svc, "results before any restart")

        nats_server.stop()
        await asyncio.sleep(3)  # long enough for every client to notice and retry
        nats_server.start()
        await _grows(svc, "results after NATS came back")

        own_pg.stop()
        await asyncio.sleep(3)
        own_pg.start()
        await _grows(svc, "results after PostgreSQL came back")

        assert all(p.alive for p in procs), [p.output() for p in procs if not p.alive]
        stats = await quiesce_and_check(svc, [procs[1]], [procs[2]])
        assert stats["dead"] == 0
    finally:
        await svc.close()
