"""htmx requests that fail get a small HTML partial with the reason (the page shows it where
the answer would have gone, tocsin.js), and "Check now" is offered only for a task an agent
can run: not for a heartbeat monitor (its pings judge it), nor for a removed task."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from events.types import ConfigApplied
from services.web.settings import WebSettings
from tests.test_web_pages import login
from tests.web_fixtures import Seeder, add_user, task_def, web_server

HX = {"HX-Request": "true"}
WEBSITE = task_def(1, "shop.example")
MONITOR = task_def(
    2,
    "nightly-backup",
    check="heartbeat",
    expected={"uuid": "6f1c1bd2-5a43-4cb6-9d55-0a3f1f7e2b10", "period": 60.0, "grace": 30.0},
)
REMOVED = task_def(3, "shop.example")


async def _seeded(database_url: str) -> None:
    s = Seeder(database_url)
    s.config([WEBSITE, MONITOR, REMOVED])
    s.add(
        ConfigApplied(
            at=time.time(), revision="r2", source="t.yaml", applied_by="t", removed=[REMOVED.id]
        )
    )
    await s.flush()
    await add_user(database_url, "ops", "pw")


async def _csrf(c: httpx.AsyncClient, path: str) -> str:
    page = await c.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


# (what is asked, with the form's CSRF token, status, the reason shown)
ERRORS = [
    pytest.param(
        f"/tasks/{WEBSITE.id}/check",
        False,
        403,
        "missing or stale CSRF token; reload the page",
        id="stale-csrf",
    ),
    pytest.param(
        f"/tasks/{WEBSITE.id}/check",
        True,
        503,
        "check now needs NATS: set NATS_URL for the web service",
        id="no-nats",
    ),
    pytest.param("/tasks/nope", True, 404, "no such task", id="unknown-page"),
]


@pytest.mark.parametrize(("path", "with_csrf", "status", "reason"), ERRORS)
async def test_an_htmx_request_that_fails_gets_a_partial_with_the_reason(
    database_url, path, with_csrf, status, reason
):
    await _seeded(database_url)
    settings = WebSettings(cookie_secret="h" * 32)
    async with web_server(database_url, settings) as web:
        async with httpx.AsyncClient(base_url=web.url) as c:
            await login(c, "ops", "pw")
            data = {"csrf_token": await _csrf(c, f"/tasks/{WEBSITE.id}") if with_csrf else ""}
            method = "POST" if path.endswith("/check") else "GET"
            r = await c.request(method, path, headers=HX, data=data if method == "POST" else None)
            assert r.status_code == status, r.text
            assert "<html" not in r.text and "<!doctype" not in r.text.lower()
            assert 'role="alert"' in r.text and reason in r.text and str(status) in r.text
            # The same error outside htmx is still the whole error page.
            plain = await c.request(method, path, data=data if method == "POST" else None)
            assert plain.status_code == status and "<!doctype html>" in plain.text


BUTTONS = [
    pytest.param(f"/tasks/{WEBSITE.id}", True, id="website-task"),
    pytest.param(f"/tasks/{MONITOR.id}", False, id="heartbeat-monitor"),
    pytest.param(f"/tasks/{REMOVED.id}", False, id="removed-task"),
    pytest.param("/domains/shop.example", True, id="domain-with-a-website"),
    pytest.param("/domains/nightly-backup", False, id="domain-of-a-monitor-only"),
]


@pytest.mark.parametrize(("path", "offered"), BUTTONS)
async def test_check_now_is_offered_only_for_what_an_agent_can_run(
    database_url, path: str, offered: bool
):
    await _seeded(database_url)
    settings: Any = WebSettings(cookie_secret="h" * 32, unauthenticated_access="all")
    async with web_server(database_url, settings) as web:
        async with httpx.AsyncClient(base_url=web.url) as c:
            page = await c.get(path)
            assert page.status_code == 200, page.text
            assert ('id="check-now"' in page.text) is offered
