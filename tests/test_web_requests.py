"""What the web accepts from a request body is what the log admits, and the request itself is
bounded: every free-text field published as an event is checked by the event contract (a 2xx
is never followed by a dead letter), a lone surrogate is a 422 that does not echo it, a body
past the limit is a 413 before it is read, credentials are checked before the body is parsed
(401 before 422), and every GET route answers HEAD."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from events import codec, streams
from runtime import bus
from services.web import authdb
from services.web.bodylimit import BODY_LIMIT
from services.web.settings import WebSettings
from tests.test_web_pages import seed
from tests.web_fixtures import web_server

PAGE = {
    "slug": "demo",
    "title": "Demo",
    "description": "",
    "groups": [
        {
            "name": "Shop",
            "components": [{"name": "Web", "tasks": ["t1-a.example"], "domains": ["a.example"]}],
        }
    ],
}
ACK = "/api/tasks/t2-b.example/acknowledge"
OPEN_INCIDENT = "/api/status/demo/incidents"


@dataclass
class Site:
    client: httpx.AsyncClient
    nats_url: str
    #: Authorization headers by token name.
    tokens: dict[str, dict[str, str]]


@pytest.fixture
async def site(nats_server: Any, database_url: str) -> AsyncIterator[Site]:
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), [])
    await nc.close()
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    await authdb.ensure(conn)
    tokens = {}
    for name in ("ci", "n" * 300):
        token = await authdb.create_token(conn, name, "write")
        tokens[name] = {"Authorization": f"Bearer {token}"}
    await conn.close()
    settings = WebSettings(
        cookie_secret="t" * 32,
        unauthenticated_access="all",
        nats_url=nats_server.url,
        status_pages=[PAGE],
        status_domains=["*"],
    )
    async with web_server(database_url, settings) as web:
        async with httpx.AsyncClient(base_url=web.url, timeout=30) as client:
            yield Site(client, nats_server.url, tokens)


async def _published(nats_url: str) -> list[tuple[str, bytes]]:
    nc = await nats.connect(nats_url)
    try:
        return [(m.subject, m.data) async for m in bus.replay(nc.jetstream(), "tocsin.>")]
    finally:
        await nc.close()


#: (path, JSON body, token name): free text of every endpoint that publishes it as an event.
EVENT_FIELDS = {
    "ack reason NUL": (ACK, {"reason": "\x00"}, "ci"),
    "ack reason NUL among spaces": (ACK, {"reason": " \x00 "}, "ci"),
    "ack reason text then NUL": (ACK, {"reason": "a\x00"}, "ci"),
    "ack by a token named too long": (ACK, {"reason": "on it"}, "n" * 300),
    "incident title NUL": (OPEN_INCIDENT, {"title": "\x00", "message": "m"}, "ci"),
    "incident message NUL": (OPEN_INCIDENT, {"title": "t", "message": "m\x00"}, "ci"),
    "incident component NUL": (
        OPEN_INCIDENT,
        {"title": "t", "message": "m", "components": ["\x00"]},
        "ci",
    ),
    "incident by a token named too long": (
        OPEN_INCIDENT,
        {"title": "t", "message": "m"},
        "n" * 300,
    ),
    "incident update NUL": (
        OPEN_INCIDENT + "/abc",
        {"message": "\x00", "phase": "resolved"},
        "ci",
    ),
}


@pytest.mark.parametrize("name", EVENT_FIELDS)
async def test_no_free_text_accepted_that_the_log_refuses(site: Site, name: str) -> None:
    path, body, token = EVENT_FIELDS[name]
    r = await site.client.post(path, json=body, headers=site.tokens[token])
    assert r.status_code == 422 or r.status_code == 404, (r.status_code, r.text[:300])
    assert "detail" in r.json()
    for subject, data in await _published(site.nats_url):
        codec.decode(data, subject)  # a dead letter raises here


async def test_good_text_is_published_and_admitted(site: Site) -> None:
    h = site.tokens["ci"]
    assert (await site.client.post(ACK, json={"reason": "on it"}, headers=h)).status_code == 200
    r = await site.client.post(OPEN_INCIDENT, json={"title": "Down", "message": "m"}, headers=h)
    assert r.status_code == 200, r.text
    found = [codec.decode(d, s) for s, d in await _published(site.nats_url)]
    assert {type(e).__name__ for e in found} == {"IncidentAcknowledged", "StatusIncidentPosted"}


SURROGATES = {
    "ack reason": (ACK, b'{"reason":"\\ud800"}'),
    "ack key": (ACK, b'{"\\udfff":"x"}'),
    "incident title": (OPEN_INCIDENT, b'{"title":"\\ud800","message":"m"}'),
    "incident message": (OPEN_INCIDENT, b'{"title":"t","message":"a\\udc00b"}'),
}


@pytest.mark.parametrize("name", SURROGATES)
async def test_a_lone_surrogate_is_a_422_never_echoed(site: Site, name: str) -> None:
    path, raw = SURROGATES[name]
    headers = site.tokens["ci"] | {"content-type": "application/json"}
    r = await site.client.post(path, content=raw, headers=headers)
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert r.json()["detail"]
    assert "Traceback" not in r.text
    assert await _published(site.nats_url) == []


#: Endpoints taking a body, and its content type; each read once the caller is known.
BODIES = {
    "incident api": (OPEN_INCIDENT, "application/json"),
    "ack api": (ACK, "application/json"),
    "login form": ("/login", "application/x-www-form-urlencoded"),
    "status subscribe form": ("/status/demo/subscribe", "application/x-www-form-urlencoded"),
}


@pytest.mark.parametrize("name", BODIES)
async def test_a_body_past_the_limit_is_a_413(site: Site, name: str) -> None:
    path, kind = BODIES[name]
    headers = site.tokens["ci"] | {"content-type": kind}
    big = b"x" * (BODY_LIMIT + 1)
    announced = await site.client.post(path, content=big, headers=headers)
    assert announced.status_code == 413, announced.text[:300]
    assert str(BODY_LIMIT) in announced.text

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: sent chunked, counted as it comes.
        for _ in range(BODY_LIMIT // 65536 + 2):
            yield b"x" * 65536

    streamed = await site.client.post(path, content=chunks(), headers=headers)
    assert streamed.status_code == 413, streamed.text[:300]
    assert str(BODY_LIMIT) in streamed.text


async def test_a_ping_keeps_its_larger_body(site: Site) -> None:
    # Heartbeat pings read any body, keeping its start (services/web/ping.py).
    r = await site.client.post(f"/ping/{'0' * 32}", content=b"x" * (BODY_LIMIT + 1))
    assert r.status_code == 404, r.text


@pytest.mark.parametrize("path", [ACK, OPEN_INCIDENT, OPEN_INCIDENT + "/abc"])
async def test_credentials_before_the_body(site: Site, path: str) -> None:
    garbage = await site.client.post(
        path, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 401, (garbage.status_code, garbage.text[:300])
    wrong = await site.client.post(
        path, content=b"{not json", headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401, (wrong.status_code, wrong.text[:300])
    known = await site.client.post(
        path,
        content=b"{not json",
        headers=site.tokens["ci"] | {"content-type": "application/json"},
    )
    assert known.status_code == 422


HEAD_ROUTES = [
    "/",
    "/healthz",
    "/metrics",
    "/api/tasks",
    "/status/demo",
    "/status/demo/feed.atom",
    "/badges/task/t1-a.example/status.svg",
    "/tasks/t1-a.example",
    "/static/tocsin.css",
    "/openapi.json",
    "/live",
]


@pytest.mark.parametrize("path", HEAD_ROUTES)
async def test_every_get_route_answers_head(site: Site, path: str) -> None:
    got = await site.client.get(path) if path != "/live" else None
    head = await asyncio.wait_for(site.client.head(path), 10)
    assert head.status_code == 200, (path, head.status_code)
    assert head.content == b""
    if got is not None:
        assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["x-content-type-options"] == "nosniff"


async def test_head_of_an_unknown_path_is_a_404(site: Site) -> None:
    assert (await site.client.head("/nowhere")).status_code == 404
    # A route with no GET still refuses HEAD.
    assert (await site.client.head(ACK)).status_code == 405


async def test_head_is_not_in_the_schema(site: Site) -> None:
    schema = (await site.client.get("/openapi.json")).json()
    assert not [p for p, ops in schema["paths"].items() if "head" in ops]
