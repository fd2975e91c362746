"""``/healthz`` and ``/metrics`` say when checks stopped: no result for far longer than the
most frequent task is "checks stale", a 503 a watchdog (Gatus, Uptime Kuma) alarms on.

A scheduler hung for minutes left every task "ok" with an old last check, and ``/healthz``
answered ``{"status": "ok"}`` throughout."""

from __future__ import annotations

import time

import httpx
import msgspec

from services.web import staleness
from services.web.settings import WebSettings
from tests.web_fixtures import Seeder, task_def, web_server

OPEN = WebSettings(cookie_secret="t" * 32, unauthenticated_access="all")
HOUR = 3600.0


async def _seed(database_url: str, last_result: float) -> Seeder:
    s = Seeder(database_url)
    task = task_def(1)  # every 60 s
    # No results, whatever their frequency: a heartbeat monitor (its pings are judged).
    heartbeat = msgspec.structs.replace(
        task_def(2, check="heartbeat", expected={"period": "5s"}), frequency=5.0
    )
    s.config([task, heartbeat], at=last_result - HOUR)
    s.result(task, "success", last_result)
    await s.flush()
    return s


async def test_healthz_and_metrics_say_checks_stale(database_url: str) -> None:
    now = time.time()
    seeder = await _seed(database_url, now - 10 * 60)
    async with web_server(database_url, OPEN) as web, httpx.AsyncClient(base_url=web.url) as c:
        # Just started: it saw no silence yet (the whole system back from a downtime).
        assert (await c.get("/healthz")).json()["status"] == "ok"
        web.app.state.watching_since = time.monotonic() - HOUR  # watching for an hour
        health = await c.get("/healthz")
        assert health.status_code == 503, health.text
        body = health.json()
        assert body["status"] == "stale" and body["down"] == ["checks"]
        assert body["stale_after"] == staleness.RUNS * 60
        assert body["last_result_age"] >= 10 * 60
        assert "tocsin_checks_stale 1.0" in (await c.get("/metrics")).text
        seeder.result(task_def(1), "success", time.time())
        await seeder.flush()
        health = await c.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        metrics = (await c.get("/metrics")).text
        assert "tocsin_checks_stale 0.0" in metrics
        assert "tocsin_last_result_age_seconds" in metrics


def test_nothing_for_agents_to_run_is_never_stale() -> None:
    assert not staleness.judge(None, None, HOUR).stale
    assert staleness.judge(None, 60.0, HOUR).stale  # tasks in force, never a result
    assert not staleness.judge(None, 60.0, 10.0).stale  # … since the web started 10 s ago
    assert staleness.judge(10 * 60, 1.0, HOUR).stale_after == staleness.FLOOR
