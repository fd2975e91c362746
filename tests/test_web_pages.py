"""The pages, API, badges and metrics over read models seeded with real events."""

from __future__ import annotations

import re
import time
from typing import Any

import asyncpg
import httpx

from events.types import SilenceAdded, SilenceRemoved
from services.web import authdb
from services.web.settings import WebSettings
from tests.web_fixtures import Seeder, add_user, task_def, web_server

XSS = "<script>window.__xss=1</script>"


async def login(
    client: httpx.AsyncClient, name: str, password: str, remember: bool = False
) -> httpx.Response:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    data = {"username": name, "password": password, "csrf_token": token.group(1), "next": "/"}
    if remember:
        data["remember"] = "on"
    return await client.post("/login", data=data)


async def seed(database_url: str) -> dict[str, Any]:
    s = Seeder(database_url)
    now = time.time()
    ok, bad, warn = task_def(1, "a.example"), task_def(2, "b.example"), task_def(3, "a.example")
    s.config([ok, bad, warn], at=now - 7200)
    for k in range(5):
        at = now - 3600 + k * 600
        s.result(ok, "success", at, ms=100 + k)
        s.judge(ok, "ok", None if k == 0 else "ok", at)
    s.result(bad, "success", now - 3000)
    s.judge(bad, "ok", None, now - 3000)
    s.result(bad, "failure", now - 1200, http=500, detail=XSS, headers={"x-evil": XSS}, error=None)
    s.judge(bad, "critical", "ok", now - 1200, reason="status 500 " + XSS)
    res = s.result(warn, "error", now - 60, http=None, ms=None, error=XSS)
    s.judge(warn, "warning", None, now - 60)
    s.heartbeat("alive", now)
    s.heartbeat("silent", now - 600)
    s.dead_letter(bad.group, now - 30)
    await s.flush()
    return {"ok": ok, "bad": bad, "warn": warn, "warn_seq": res}


async def test_pages_show_state_history_and_escape_untrusted_text(database_url):
    data = await seed(database_url)
    bad, warn = data["bad"], data["warn"]
    await add_user(database_url, "ops", "s3cret")
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        assert (await login(c, "ops", "s3cret")).status_code == 303
        page = (await c.get("/")).text
        # Worst first: the critical task's domain before the others; counts are filters.
        assert page.index("b.example") < page.index("a.example")
        assert 'href="/?q=&amp;severity=critical&amp;page=1"' in page
        assert re.search(r"critical <b>1</b>", page) and re.search(r"ok <b>1</b>", page)
        assert XSS not in page and "&lt;script&gt;" in page
        only = (await c.get("/", params={"severity": "warning"})).text
        assert f"task-{warn.id}" in only and f"task-{bad.id}" not in only
        filtered = (await c.get("/", params={"q": "b.exam"})).text
        assert f"task-{bad.id}" in filtered and f"task-{warn.id}" not in filtered
        # htmx refreshes get only the live block.
        part = (await c.get("/", headers={"HX-Request": "true"})).text
        assert part.lstrip().startswith('<div id="live"') and "<html" not in part

        task = (await c.get(f"/tasks/{bad.id}")).text
        # The failure is a red band, not a point of the response-time line.
        assert '<svg class="chart"' in task and '<rect class="fail"' in task
        assert '<circle class="dot"' in task and "<polyline" not in task
        steady = (await c.get(f"/tasks/{data['ok'].id}")).text
        assert "<polyline" in steady and '<rect class="fail"' not in steady
        assert "Incidents" in task and "ongoing" in task and XSS not in task
        assert "status-is" in task and "Frequency" in task
        dom = (await c.get("/domains/a.example")).text
        assert "Uptime" in dom and '<svg class="chart"' in dom and "80.00 %" not in dom
        result = (await c.get(f"/tasks/{warn.id}/results/{data['warn_seq']}")).text
        assert XSS not in result and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in result

        agents = (await c.get("/agents")).text
        assert re.search(r'class="agent lost" data-agent="silent"', agents)
        assert re.search(r'class="agent" data-agent="alive"', agents)

        audit = (await c.get("/audit")).text
        assert audit.index("ev-deadletter") < audit.index("ev-config-applied")
        sev = (await c.get("/audit", params={"type": "severity.changed", "task": bad.id})).text
        assert "ok → critical" in sev and "config.applied</td>" not in sev and XSS not in sev

        assert (await c.get("/tasks/nope")).status_code == 404


async def test_dashboard_pages_instead_of_shipping_every_row(database_url):
    s = Seeder(database_url)
    tasks = [task_def(i, f"d{i % 40}.example") for i in range(250)]
    s.config(tasks)
    await s.flush()
    await add_user(database_url, "ops", "pw")
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        await login(c, "ops", "pw")
        first = (await c.get("/")).text
        assert first.count('class="task ') == 100 and "1–100 of 250" in first
        last = (await c.get("/", params={"page": 3})).text
        assert last.count('class="task ') == 50 and "201–250 of 250" in last


async def test_api_badges_status_page_and_metrics(database_url):
    data = await seed(database_url)
    bad = data["bad"]
    settings = WebSettings(cookie_secret="x" * 32, status_domains=["a.example"])
    async with web_server(database_url, settings) as web, httpx.AsyncClient(base_url=web.url) as c:
        assert (await c.get("/api/tasks")).status_code == 401

        conn = await asyncpg.connect(database_url)
        token = await authdb.create_token(conn, "script")
        await conn.close()
        h = {"Authorization": f"Bearer {token}"}
        tasks = (await c.get("/api/tasks", headers=h)).json()
        assert [t["severity"] for t in tasks] == ["critical", "warning", "ok"]
        assert (await c.get("/api/tasks", headers=h, params={"severity": "ok", "limit": 1})).json()[
            0
        ]["domain"] == "a.example"
        one = (await c.get(f"/api/tasks/{bad.id}", headers=h)).json()
        assert one["definition"]["url"] == bad.url and one["uptime"]["24h"] == 50.0
        results = (await c.get("/api/results", headers=h, params={"task": bad.id})).json()
        assert [r["status"] for r in results] == ["failure", "success"]
        older = (
            await c.get(
                "/api/results", headers=h, params={"task": bad.id, "before": results[0]["seq"]}
            )
        ).json()
        assert [r["status"] for r in older] == ["success"]
        domains = (await c.get("/api/domains", headers=h)).json()
        assert [d["domain"] for d in domains] == ["b.example", "a.example"]
        agents = (await c.get("/api/agents", headers=h)).json()
        assert {a["name"] for a in agents} == {"alive", "silent"}
        incidents = (
            await c.get("/api/incidents", headers=h, params={"domain": "b.example"})
        ).json()
        assert len(incidents) == 1 and incidents[0]["end"] is None
        events = (await c.get("/api/events", headers=h, params={"type": "deadletter"})).json()
        assert len(events) == 1 and events[0]["grp"] == bad.group
        assert (
            await c.get("/api/tasks", headers={"Authorization": "Bearer nope"})
        ).status_code == 401
        schema = (await c.get("/openapi.json")).json()
        assert {
            "/api/tasks",
            "/api/results",
            "/api/domains",
            "/api/agents",
            "/api/incidents",
            "/api/events",
        } <= set(schema["paths"])
        docs = await c.get("/docs")
        # Offline: every asset of the API documentation comes from this server.
        assert docs.status_code == 200 and "swagger-ui-bundle" in docs.text
        assert not re.search(r'(?:src|href)="(?:https?:)?//', docs.text)
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.text):
            assert (await c.get(asset)).status_code == 200, asset

        # Published domain: public; the other one is not.
        badge = await c.get("/badges/domain/a.example/status.svg")
        assert badge.headers["content-type"] == "image/svg+xml" and "degraded" in badge.text
        up = await c.get("/badges/task/" + data["ok"].id + "/uptime-24h.svg")
        assert "100.00%" in up.text
        assert (await c.get("/badges/domain/b.example/status.svg")).status_code == 404
        assert (
            await c.get(f"/badges/task/{bad.id}/status.svg", headers=h)
        ).status_code == 404  # a token is for the API, badges follow the page rules

        assert (await c.get("/metrics")).status_code == 401
        text = (await c.get("/metrics", headers=h)).text
        assert 'tocsin_tasks{severity="critical"} 1' in text
        assert "tocsin_projector_position " in text and "tocsin_checks_completed_total" in text
        assert 'tocsin_http_request_duration_seconds_count{method="GET",route="/api/tasks"}' in text


async def test_silenced_tasks_show_as_such(database_url):
    s = Seeder(database_url)
    now = time.time()
    quiet, loud = task_def(1, "quiet.example"), task_def(2, "loud.example")
    s.config([quiet, loud], at=now - 60)
    s.add(
        SilenceAdded(
            at=now - 30,
            id="s1",
            starts=now - 30,
            ends=now + 3600,
            reason="planned upgrade",
            by="ops",
            domain="quiet.example",
        )
    )
    s.add(
        SilenceAdded(
            at=now - 20,
            id="s2",
            starts=now - 20,
            ends=now + 3600,
            reason="lifted",
            by="ops",
            domain="loud.example",
        )
    )
    s.add(SilenceRemoved(at=now - 10, id="s2", by="ops"))
    await s.flush()
    async with (
        web_server(database_url, WebSettings(unauthenticated_access="all")) as web,
        httpx.AsyncClient(base_url=web.url) as c,
    ):
        page = (await c.get("/")).text
        rows = {
            m.group(1): m.group(0)
            for m in re.finditer(r'<tr id="task-([^"]+)".*?</tr>', page, re.S)
        }
        assert 'title="silenced: planned upgrade"' in rows[quiet.id]
        assert "silenced" not in rows[loud.id]
        task_page = (await c.get(f"/tasks/{quiet.id}")).text
        assert "Silenced: planned upgrade" in task_page


async def test_login_state_shows_in_open_mode_and_dashboard_history(database_url):
    data = await seed(database_url)
    await add_user(database_url, "ops", "pw")
    settings = WebSettings(cookie_secret="o" * 32, unauthenticated_access="all")
    async with web_server(database_url, settings) as web, httpx.AsyncClient(base_url=web.url) as c:
        anonymous = (await c.get("/")).text
        assert 'href="/login"' in anonymous and "Log out" not in anonymous
        assert (await login(c, "ops", "pw")).status_code == 303
        for path in ("/", f"/tasks/{data['ok'].id}", "/agents"):
            page = (await c.get(path)).text
            assert '<span class="user" title="logged in">ops</span>' in page, path
            assert "Log out" in page and 'href="/login"' not in page, path
        # Heartbeat strip, 24 h uptime and title count of critical tasks.
        page = (await c.get("/")).text
        row = re.search(rf'<tr id="task-{data["ok"].id}".*?</tr>', page, re.S)
        assert row and row.group(0).count("<i class=o></i>") == 5
        assert "100.00 %" in row.group(0) and '<svg class="spark"' in row.group(0)
        assert "<title>(1) Dashboard · Tocsin</title>" in page and 'data-critical="1"' in page
        icon = await c.get("/favicon.svg", params={"critical": 3})
        assert icon.headers["content-type"] == "image/svg+xml" and ">3</text>" in icon.text
