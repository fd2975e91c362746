"""A dependant's page says what blocks its alerts: the dependencies not ok now."""

from __future__ import annotations

import time

import httpx

from services.web.settings import WebSettings, load_settings
from tests.helpers import write_config
from tests.web_fixtures import Seeder, task_def, web_server


async def test_task_page_shows_blocked_by_the_failing_dependency(database_url):
    s = Seeder(database_url)
    now = time.time()
    db, cache, app = (
        task_def(1, "db.example"),
        task_def(2, "cache.example"),
        task_def(3, "app.example"),
    )
    s.config([db, cache, app], at=now - 60)
    s.judge(db, "critical", "ok", now - 30)
    s.judge(cache, "ok", None, now - 30)
    s.judge(app, "critical", "ok", now - 20)
    await s.flush()
    settings = WebSettings(
        unauthenticated_access="all",
        depends={"app.example": ["db.example", "https://cache.example/p2"]},
    )
    async with (
        web_server(database_url, settings) as web,
        httpx.AsyncClient(base_url=web.url) as c,
    ):
        page = (await c.get(f"/tasks/{app.id}")).text
        assert (
            '<span class="blocked" id="blocked-by">blocked by https://db.example/p1</span>' in page
        )
        assert "cache.example" not in page  # ok: not blocking
        assert "blocked by" not in (await c.get(f"/tasks/{db.id}")).text


def test_web_settings_read_depends_on(tmp_path):
    path = write_config(
        tmp_path / "c.yaml",
        """general:
  frequency: 1m
websites:
  - domain: https://app.example:8443
    depends_on: [db.example, "https://proxy.example/health"]
    paths: [{path: /, checks: [{status-is: 200}]}]
  - domain: https://db.example
    paths: [{path: /, checks: [{status-is: 200}]}]
  - domain: https://proxy.example
    paths: [{path: /health, checks: [{status-is: 200}]}]
""",
    )
    s = load_settings(str(path), env={})
    assert s.depends == {"app.example:8443": ["db.example", "https://proxy.example/health"]}
