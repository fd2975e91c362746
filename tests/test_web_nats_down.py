"""Every route of the web that writes to NATS (or follows it), while NATS is down: a 503 at
once, saying what failed (the wait for NATS is bounded), in the shape its caller reads (JSON
for the API, a partial for htmx, a page for a form, text for a ping), and nothing written to
the log once NATS is back. Down from the start (the web never reached it) and lost after use
(the web's connection reconnecting). Real NATS, PostgreSQL and web."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from events import codec, streams
from events.statuspages import StatusSubscriber
from events.types import IncidentAcknowledged
from runtime import bus
from runtime.embedded import NatsServer
from services.web import authdb
from services.web.settings import WebSettings
from tests.helpers import wait_for
from tests.test_web_pages import login
from tests.web_fixtures import Seeder, WebServer, add_user, task_def, web_server

KEY = "0b6a2f1e-8c1d-4c53-9a77-2d5f0e4b9c31"
BAD = task_def(1, "bad.example")
LOGGED = task_def(3, "localhost")  # a group that can name a subject: no dot
MONITOR = task_def(
    2, "nightly-backup", check="heartbeat", expected={"uuid": KEY, "period": 60.0, "grace": 30.0}
)
PAGE = {
    "slug": "main",
    "title": "Main",
    "groups": [{"name": "All", "components": [{"name": "Shop", "tasks": [BAD.id], "domains": []}]}],
}
SUBSCRIBER = "tok-of-a-subscriber"
HX = {"HX-Request": "true"}

#: What the web says, by how it found NATS.
REASONS = {
    "down-from-the-start": "the event log (NATS) is unreachable: timed out after 2s",
    "lost-after-use": "the event log (NATS) is unreachable: connection lost, reconnecting",
}


@dataclass
class Case:
    method: str
    path: str
    #: "token", "session" (with the forms' CSRF token) or "anonymous".
    who: str
    #: How the answer is read: "json", "partial" (htmx), "page" or "text".
    shape: str
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None


CASES = [
    pytest.param(Case("POST", f"/api/tasks/{BAD.id}/check", "token", "json"), id="api-check-task"),
    pytest.param(
        Case("POST", "/api/domains/bad.example/check", "token", "json"), id="api-check-domain"
    ),
    pytest.param(Case("POST", f"/tasks/{BAD.id}/check", "session", "partial"), id="htmx-check-now"),
    pytest.param(
        Case("POST", f"/api/tasks/{BAD.id}/acknowledge", "token", "json", json={"reason": "x"}),
        id="api-acknowledge",
    ),
    pytest.param(
        Case("POST", f"/tasks/{BAD.id}/acknowledge", "session", "partial", form={"reason": "x"}),
        id="htmx-acknowledge",
    ),
    pytest.param(
        Case(
            "POST",
            "/api/status/main/incidents",
            "token",
            "json",
            json={"title": "Slow", "message": "looking", "phase": "investigating"},
        ),
        id="api-incident",
    ),
    pytest.param(
        Case(
            "POST", "/status/main/incidents", "session", "page", form={"title": "t", "message": "m"}
        ),
        id="form-incident",
    ),
    pytest.param(
        Case("POST", "/status/main/subscribe", "anonymous", "page", form={"email": "a@b.example"}),
        id="subscribe",
    ),
    pytest.param(
        Case("POST", "/status/main/confirm", "anonymous", "page", form={"token": SUBSCRIBER}),
        id="confirm-subscription",
    ),
    pytest.param(Case("GET", f"/ping/{KEY}", "anonymous", "text"), id="heartbeat-ping"),
    pytest.param(
        Case("GET", f"/requests/{LOGGED.group}.default.now1/log", "session", "page"), id="run-log"
    ),
]


async def _seeded(database_url: str) -> str:
    """The read model of the cases, and a write token."""
    s = Seeder(database_url)
    s.config([BAD, MONITOR, LOGGED], at=time.time() - 60)
    s.judge(BAD, "critical", "ok", time.time() - 30)
    s.add(
        StatusSubscriber(
            at=time.time(), page="main", email="a@b.example", state="requested", token=SUBSCRIBER
        )
    )
    await s.flush()
    await add_user(database_url, "ops", "pw")
    conn = await asyncpg.connect(database_url)
    try:
        return await authdb.create_token(conn, "script", "write")
    finally:
        await conn.close()


async def _last_seq(nats_url: str) -> int:
    nc = await bus.connect(nats_url, "test")
    try:
        return (await nc.jetstream().stream_info(streams.EVENTS)).state.last_seq or 0
    finally:
        await bus.close(nc)


async def _events_after(nats_url: str, seq: int) -> list[Any]:
    nc = await bus.connect(nats_url, "test")
    try:
        js = nc.jetstream()
        last = (await js.stream_info(streams.EVENTS)).state.last_seq or 0
        found = []
        for n in range(seq + 1, last + 1):
            msg = await js.get_msg(streams.EVENTS, n)
            found.append(codec.decode(msg.data or b"", msg.subject))
        return found
    finally:
        await bus.close(nc)


async def _call(c: httpx.AsyncClient, case: Case, token: str, csrf: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if case.who == "token" else {}
    if case.shape == "partial":
        headers |= HX
    form = case.form
    if case.who == "session" and case.method == "POST":
        form = {**(form or {}), "csrf_token": csrf}
    return await c.request(case.method, case.path, headers=headers, json=case.json, data=form)


def _reason_of(r: httpx.Response, shape: str) -> str:
    if shape == "json":
        return str(r.json()["detail"])
    if shape == "text":
        return r.text.strip()
    assert r.headers["content-type"].startswith("text/html"), r.text
    if shape == "partial":
        assert "<!doctype" not in r.text.lower() and 'role="alert"' in r.text, r.text
        found = re.search(r"<strong>503</strong> ([^<]*)</p>", r.text)
    else:
        assert "<!doctype html>" in r.text.lower(), r.text
        found = re.search(r"<p[^>]*>([^<]*NATS[^<]*)</p>", r.text)
    assert found, r.text
    return found.group(1).strip()


async def _marker(web: WebServer, token: str) -> httpx.Response:
    """An acknowledgement through the web once NATS is back: the event that must follow the
    baseline alone (a write refused while NATS was away must not land with it)."""
    async with httpx.AsyncClient(
        base_url=web.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as c:
        return await c.post(f"/api/tasks/{BAD.id}/acknowledge", json={"reason": "marker"})


async def _connected(web: WebServer) -> bool:
    nc = web.app.state.nats
    return nc is not None and nc.is_connected


async def _lost(web: WebServer) -> bool:
    nc = web.app.state.nats
    return nc is not None and not nc.is_connected


@pytest.fixture
async def nats_with_log(nats_server: NatsServer) -> AsyncIterator[NatsServer]:
    nc = await bus.connect(nats_server.url, "test")
    await streams.ensure(nc.jetstream(), [])
    await bus.close(nc)
    yield nats_server


@pytest.mark.parametrize("nats", list(REASONS))
@pytest.mark.parametrize("case", CASES)
async def test_a_route_answers_at_once_saying_nats_is_unreachable_and_writes_nothing(
    nats_with_log: NatsServer, database_url: str, case: Case, nats: str
):
    token = await _seeded(database_url)
    baseline = await _last_seq(nats_with_log.url)
    settings = WebSettings(
        cookie_secret="n" * 32,
        nats_url=nats_with_log.url,
        status_pages=[PAGE],
        mail_subscriptions=True,
    )
    if nats == "down-from-the-start":
        nats_with_log.stop()
    async with web_server(database_url, settings) as web:
        if nats == "lost-after-use":
            await wait_for(lambda: _connected(web), what="the web's NATS connection")
            nats_with_log.stop()
            await wait_for(lambda: _lost(web), what="the web to see NATS gone")
        async with httpx.AsyncClient(base_url=web.url, timeout=60) as c:
            await login(c, "ops", "pw")
            page = await c.get(f"/tasks/{BAD.id}")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf, page.text
            r = await _call(c, case, token, csrf.group(1))
        assert r.status_code == 503, r.text
        assert _reason_of(r, case.shape).removesuffix("; retry") == REASONS[nats]
        nats_with_log.start()
        await wait_for(lambda: _connected(web), what="the web back on NATS")
        assert (await _marker(web, token)).status_code == 200
    after = await _events_after(nats_with_log.url, baseline)
    assert [(type(e), getattr(e, "reason", None)) for e in after] == [
        (IncidentAcknowledged, "marker")
    ]
