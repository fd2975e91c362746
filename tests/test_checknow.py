"""Check now: the web button, the API and ``tocsin check-now`` run a task at once through the
same queue, agents and judge, without moving the schedule; rate limit and access."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from checks import request
from events import codec, control, subjects
from events.types import CheckRequested
from runtime import bus
from services import cli
from services.web import authdb
from services.web.settings import WebSettings
from tests.helpers import DemoTarget, Stack, fetch, wait_for, write_config
from tests.web_fixtures import add_user, web_server

# An hour between scheduled runs: during a test only "check now" runs the task.
CONFIG = """
general:
  frequency: 1h
  ipv6: false
  timeout: 3s
websites:
  - domain: {url}
    paths:
      - path: /broken
        checks:
          - status-is: 200
"""


class Setup:
    def __init__(self, stack: Stack, web: Any, target: DemoTarget, nats_url: str, db: str):
        self.stack, self.web, self.target, self.nats_url, self.db = stack, web, target, nats_url, db

    async def task(self) -> dict[str, Any]:
        rows = await wait_for(
            lambda: fetch(self.db, "SELECT * FROM tasks"), what="the task in the read model"
        )
        return dict(rows[0])

    async def token(self, scope: str) -> str:
        conn = await asyncpg.connect(self.db)
        try:
            return await authdb.create_token(conn, f"script-{scope}", scope)
        finally:
            await conn.close()

    async def severity(self, task_id: str) -> str | None:
        rows = await fetch(self.db, "SELECT severity FROM tasks WHERE id = $1", task_id)
        return rows[0]["severity"] if rows else None


@contextlib.asynccontextmanager
async def running(
    nats_url: str, db: str, target: DemoTarget, tmp_path: Path, **scheduler: Any
) -> AsyncIterator[Setup]:
    config = write_config(tmp_path / "c.yaml", CONFIG.format(url=target.url))
    stack = Stack(nats_url, db, config)
    stack.scheduler(**scheduler)
    stack.agent()
    stack.projector()
    settings = WebSettings(cookie_secret="c" * 32, nats_url=nats_url)
    try:
        async with web_server(db, settings) as web:
            yield Setup(stack, web, target, nats_url, db)
    finally:
        await stack.close()


async def requests_in_log(nats_url: str) -> list[CheckRequested]:
    nc = await bus.connect(nats_url, "test")
    try:
        out = []
        async for msg in bus.replay(nc.jetstream(), subjects.REQUESTED_ALL):
            ev = codec.decode(msg.data, msg.subject)
            assert isinstance(ev, CheckRequested)
            out.append(ev)
        return out
    finally:
        await bus.close(nc)


async def test_check_now_judges_at_once_and_leaves_the_schedule_alone(
    nats_server, database_url, demo_target, tmp_path
):
    async with running(
        nats_server.url, database_url, demo_target, tmp_path, check_now_every=1.0
    ) as s:
        scheduler = s.stack.services[0][0]
        task = await s.task()
        gid = task["grp"]
        await wait_for(lambda: _planned(scheduler, gid), what="the group in the plan")
        due = scheduler.plan.due_of(gid)
        token = await s.token("write")
        h = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=s.web.url, headers=h) as c:
            r = await c.post(f"/api/tasks/{task['id']}/check")
            assert r.status_code == 202, r.text
            [asked] = r.json()["requests"]
            assert asked["queued"] and asked["location"] == "default"
            await wait_for(lambda: _is(s, task["id"], "critical"), what="critical after check now")
            # Fixed: the next press (next slot) shows it at once, not in an hour.
            s.target.set("broken", status=200)
            await wait_for(lambda: _pressed_anew(c, task["id"], asked["request"]))
            await wait_for(lambda: _is(s, task["id"], "ok"), what="ok after the fix")
        assert scheduler.plan.due_of(gid) == due  # the scheduled run did not move
        judged = await fetch(database_url, "SELECT next_run FROM tasks WHERE id = $1", task["id"])
        assert judged[0]["next_run"].timestamp() == pytest.approx(due, abs=0.001)
        requests = await requests_in_log(nats_server.url)
        assert [r.requested_by for r in requests] == ["token:script-write"] * 2


async def _planned(scheduler: Any, gid: str) -> bool:
    return scheduler.plan.due_of(gid) is not None


async def _is(s: Setup, task_id: str, severity: str) -> bool:
    return await s.severity(task_id) == severity


async def _pressed_anew(c: httpx.AsyncClient, task_id: str, before: str) -> bool:
    r = await c.post(f"/api/tasks/{task_id}/check")
    return r.status_code == 202 and r.json()["requests"][0]["request"] != before


async def _login(c: httpx.AsyncClient, name: str, password: str) -> str:
    """Log in through the form; the CSRF token of the next form."""
    page = (await c.get("/login")).text
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = await c.post("/login", data={"username": name, "password": password, "csrf_token": csrf})
    assert r.status_code == 303, r.text
    page = (await c.get("/")).text
    return page.split('name="csrf_token" value="')[1].split('"')[0]


async def test_anonymous_and_read_only_are_refused_and_a_second_press_is_not_queued(
    nats_server, database_url, demo_target, tmp_path
):
    async with running(
        nats_server.url, database_url, demo_target, tmp_path, check_now_every=3600.0
    ) as s:
        task = await s.task()
        url = f"/api/tasks/{task['id']}/check"
        read, write = await s.token("read"), await s.token("write")
        await add_user(database_url, "alice", "secret-pw")
        async with httpx.AsyncClient(base_url=s.web.url) as c:
            assert (await c.post(url)).status_code == 401
            r = await c.post(f"/tasks/{task['id']}/check", headers={"HX-Request": "true"})
            assert r.status_code == 401 and r.headers["HX-Redirect"].startswith("/login")
            r = await c.post(url, headers={"Authorization": f"Bearer {read}"})
            assert r.status_code == 403 and "read" in r.json()["detail"]
            csrf = await _login(c, "alice", "secret-pw")
            # A logged-in session still needs the form's CSRF token.
            assert (await c.post(f"/tasks/{task['id']}/check")).status_code == 403
            r = await c.post(f"/tasks/{task['id']}/check", data={"csrf_token": csrf})
            assert r.status_code == 200 and "queued" in r.text and "already" not in r.text
            r = await c.post(f"/tasks/{task['id']}/check", data={"csrf_token": csrf})
            assert r.status_code == 200 and "already queued" in r.text
        async with httpx.AsyncClient(base_url=s.web.url) as c:
            r = await c.post(url, headers={"Authorization": f"Bearer {write}"})
            assert r.status_code == 200 and r.json()["requests"][0]["queued"] is False
            # The domain (here a URL: slashes and all) asks for the same group: not again.
            r = await c.post(
                f"/api/domains/{quote(task['domain'])}/check",
                headers={"Authorization": f"Bearer {write}"},
            )
            assert r.status_code == 200 and r.json()["requests"][0]["queued"] is False
            r = await c.post("/api/tasks/nope/check", headers={"Authorization": f"Bearer {write}"})
            assert r.status_code == 404 and "no task 'nope'" in r.json()["detail"]
        requests = await requests_in_log(nats_server.url)
        assert [r.requested_by for r in requests] == ["user:alice"]


async def test_cli_check_now_by_domain(nats_server, database_url, demo_target, tmp_path, capsys):
    async with running(nats_server.url, database_url, demo_target, tmp_path) as s:
        task = await s.task()
        args = ["check-now", "--domain", task["domain"], "--nats-url", nats_server.url]
        assert await asyncio.to_thread(cli.main, args) == 0
        assert "queued" in capsys.readouterr().out
        await wait_for(lambda: _is(s, task["id"], "critical"), what="judged after check-now")
        assert (
            await asyncio.to_thread(cli.main, ["check-now", "nope", "--nats-url", nats_server.url])
            == 2
        )
        assert "no task 'nope'" in capsys.readouterr().err


async def test_a_press_while_the_scheduler_starts_waits_for_it(
    nats_server, database_url, demo_target, tmp_path
):
    # CI: the task showed (the configuration is in the log) before the scheduler in charge
    # had subscribed; the press got "no scheduler is in charge" a moment too early.
    config = write_config(tmp_path / "c.yaml", CONFIG.format(url=demo_target.url))
    stack = Stack(nats_server.url, database_url, config)
    nc = await bus.connect(nats_server.url, "test")
    try:
        domain = demo_target.url.split("//", 1)[1]  # a website's domain is its host:port
        ask = control.CheckNow(by="test", domain=domain)
        pressing = asyncio.create_task(request.ask_now(nc, ask))
        await asyncio.sleep(1.0)
        assert not pressing.done()
        stack.scheduler()
        [asked] = await asyncio.wait_for(pressing, 30)
        assert asked.queued and asked.location == "default"
    finally:
        await bus.close(nc)
        await stack.close()


async def test_no_scheduler_at_all_is_a_clear_error_after_the_grace(nats_server):
    nc = await bus.connect(nats_server.url, "test")
    try:
        with pytest.raises(request.CheckNowError) as caught:
            await request.ask_now(nc, control.CheckNow(by="test", task="t"), grace=0.5)
        assert str(caught.value) == "no scheduler answered within 0.5s; is one running?"
        assert not caught.value.unknown  # a 503, not a 404
    finally:
        await bus.close(nc)
