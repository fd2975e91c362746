"""``recurring_tasks.max_results_age`` bounds the results the read models keep, as Argos's
recurring cleanup does; the log keeps them all."""

from __future__ import annotations

import time

import nats

from configuration.config import parse
from configuration.inforce import apply_config
from events import streams
from services.projector.service import Projector, ProjectorOptions
from tests.helpers import Stack, fetch, site_config, wait_for
from tests.web_fixtures import Seeder, task_def


def test_the_age_is_read_from_recurring_tasks(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "general:\n  frequency: 1m\nrecurring_tasks:\n  max_results_age: 1d\n"
        "  max_lock_seconds: 100\n  time_without_agent: 5\nwebsites: []\n"
    )
    assert parse(path).recurring == {
        "max_results_age": 86400.0,
        "max_lock_seconds": 100,
        "time_without_agent": 300.0,
    }


async def test_results_older_than_the_age_leave_the_read_model(
    nats_server, database_url, tmp_path
) -> None:
    s = Seeder(database_url)
    now = time.time()
    t = task_def(1)
    s.config([t], at=now - 10 * 86400)
    for days in (9, 3, 2):
        s.result(t, "success", now - days * 86400)
    s.result(t, "success", now - 60)
    await s.flush()
    stack = Stack(nats_server.url, database_url, tmp_path / "unused.yaml")
    stack._start(
        Projector(ProjectorOptions(nats_server.url, database_url, max_results_age=2.5 * 86400))
    )
    try:

        async def pruned() -> list[float]:
            rows = await fetch(database_url, "SELECT checked_at FROM results ORDER BY checked_at")
            ages = [round((now - r["checked_at"].timestamp()) / 86400, 1) for r in rows]
            return ages if len(ages) == 2 else []

        assert await wait_for(pruned, 30, what="results older than 2.5 days pruned") == [2.0, 0.0]

        async def requests_pruned() -> list[float]:
            # The requests of those results go with them (a row per check run, for ever).
            rows = await fetch(
                database_url, "SELECT requested_at FROM requests ORDER BY requested_at"
            )
            ages = [round((now - r["requested_at"].timestamp()) / 86400, 1) for r in rows]
            return ages if len(ages) == 2 else []

        assert await wait_for(requests_pruned, 30, what="requests pruned") == [2.0, 0.0]
    finally:
        await stack.close()


async def test_the_age_in_force_is_the_logs(nats_server, database_url, tmp_path) -> None:
    """A projector started without an age (its file says none) prunes by the one applied."""
    s = Seeder(database_url)
    now = time.time()
    t = task_def(1)
    s.config([t], at=now - 10 * 86400)
    for days in (9, 3, 2):
        s.result(t, "success", now - days * 86400)
    await s.flush()
    path = tmp_path / "c.yaml"
    path.write_text(
        site_config("http://127.0.0.1:9", {"p": ["status-is: 200"]})
        + "recurring_tasks:\n  max_results_age: 2.5d\n"
    )
    nc = await nats.connect(nats_server.url)
    try:
        await streams.ensure(nc.jetstream(), [])
        await apply_config(nc.jetstream(), parse(path), "test")
    finally:
        await nc.close()
    stack = Stack(nats_server.url, database_url, path)
    stack._start(Projector(ProjectorOptions(nats_server.url, database_url)))
    try:

        async def pruned() -> list[float]:
            rows = await fetch(database_url, "SELECT checked_at FROM results ORDER BY checked_at")
            ages = [round((now - r["checked_at"].timestamp()) / 86400, 1) for r in rows]
            return ages if len(ages) == 1 else []

        assert await wait_for(pruned, 30, what="results older than 2.5 days pruned") == [2.0]
    finally:
        await stack.close()
