"""A write is refused to an anonymous caller before its body is read: every route of the web
that takes anything but GET, found in the application itself (a route added later is
covered), except the few open to anyone on purpose. The body is a form with a NUL: read
and parsed, it is a 400 of the NUL guard (or a 422 of the route's own fields), not the
caller's 401 or redirect to the login page."""

from __future__ import annotations

import re

import asyncpg
import httpx
import pytest
from fastapi.routing import iter_route_contexts

from services.web import authdb
from services.web.app import create_app
from services.web.ping import is_ping
from services.web.settings import WebSettings
from tests.web_fixtures import web_server

#: Open to anyone: logging in (the credentials are the body) and out (a stale session too),
#: a status page's subscription and its confirmation (double opt-in by mail), and heartbeat
#: pings (the UUID is the secret).
PUBLIC = {
    "/login",
    "/logout",
    "/status/{slug}/subscribe",
    "/status/{slug}/confirm",
    "/ping/{key}",
    "/ping/{key}/",
    "/ping/{key}/{action}",
    "/ping/{key}/{action}/",
}
READS = {"GET", "HEAD", "OPTIONS"}


def _writes() -> list[tuple[str, str]]:
    app = create_app("postgresql://127.0.0.1:1/unused", WebSettings(cookie_secret="c" * 32))
    return sorted(
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path not in PUBLIC
        for method in (route.methods or set()) - READS
    )


WRITES = _writes()


def test_the_web_has_writes_to_guard():
    assert ("POST", "/tasks/{task_id}/check") in WRITES
    assert ("POST", "/api/status/{slug}/incidents") in WRITES


@pytest.mark.parametrize("access", ["", "all"], ids=["login-required", "open-reading"])
@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
async def test_an_anonymous_write_is_refused_before_its_body_is_read(
    database_url: str, method: str, path: str, access: str
):
    settings = WebSettings(cookie_secret="c" * 32, unauthenticated_access=access)  # type: ignore[arg-type]
    # "ping" in every parameter: /tasks/ping/check must not pass for a heartbeat ping.
    url = re.sub(r"\{[^}]+\}", "ping", path)
    async with web_server(database_url, settings) as web:
        async with httpx.AsyncClient(base_url=web.url) as c:
            r = await c.request(method, url, data={"message": "a\x00b", "csrf_token": "t"})
    if path.startswith("/api/"):
        assert (r.status_code, r.json()) == (401, {"detail": "authentication required"})
        assert r.headers["www-authenticate"] == "Bearer"
    else:
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    ("path", "root", "ping"),
    [
        pytest.param("/ping/abc", "", True, id="ping"),
        pytest.param("/ping/abc/fail/", "", True, id="ping-fail-trailing-slash"),
        pytest.param("/tocsin/ping/abc/3", "/tocsin", True, id="ping-under-a-root-path"),
        pytest.param("/tasks/ping/check", "", False, id="check-now-of-a-task-named-ping"),
        pytest.param("/status/ping/incidents", "", False, id="incident-on-a-page-named-ping"),
        pytest.param("/tocsin/tasks/ping/acknowledge", "/tocsin", False, id="ack-under-a-root"),
    ],
)
def test_only_a_ping_route_is_a_ping(path: str, root: str, ping: bool):
    """A ping's body is read before anything else, and it needs no credentials."""
    assert is_ping({"type": "http", "path": path, "root_path": root, "headers": []}) is ping


async def test_a_read_token_writes_nothing(database_url: str):
    """A token created with ``--scope read`` (the default) may read, never act: every write
    route of the application refuses it with a 403 before doing anything (an
    acknowledgement, a status-page incident, "check now", a form of a page alike)."""
    conn = await asyncpg.connect(database_url)
    try:
        await authdb.ensure(conn)
        token = await authdb.create_token(conn, "ro", "read")
    finally:
        await conn.close()
    settings = WebSettings(cookie_secret="c" * 32, unauthenticated_access="all")
    got = {}
    async with web_server(database_url, settings) as web:
        async with httpx.AsyncClient(
            base_url=web.url, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            for method, path in WRITES:
                url = re.sub(r"\{[^}]+\}", "x", path)
                r = await c.request(method, url, json={"reason": "r", "message": "m"})
                got[f"{method} {path}"] = (r.status_code, "may only read" in r.text)
    assert got == {f"{m} {p}": (403, True) for m, p in WRITES}
