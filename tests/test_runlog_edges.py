"""Run logs at their edges: the web keeps a line only when its subject names the request and
the agent the body claims (an agent may publish only under its own name and location), only
when it is within the bounds of a line, and keeps a bounded number of bytes in all; a request
log asked for an id that cannot name a request is refused, never followed.

Real NATS (lines published as an agent would, or as a forger would) and a real web."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import nats
import pytest
from nats.aio.client import Client

from events import control
from runtime.embedded import NatsServer
from services.web import runlogs as runlogs_module
from services.web.runlogs import RunLogs
from services.web.settings import WebSettings
from tests.helpers import flushed, wait_for
from tests.web_fixtures import Seeder, task_def, web_server


def _line(request: str = "g1.eu.1", agent: str = "a1", n: int = 1, text: str = "start") -> bytes:
    body = {"request": request, "agent": agent, "n": n, "ms": 0.0, "step": "start", "text": text}
    return msgspec.json.encode(body)


#: Written out, not built by ``subjects``: the layout is the contract under test.
ON_G1 = "tocsin_live.g1.eu.1.a1"
FORGED = [
    pytest.param(ON_G1, _line(text="x" * (control.MAX_LINE + 1)), id="text-longer-than-a-line"),
    pytest.param(ON_G1, _line(text="x" * 512_000), id="a-half-megabyte-message"),
    pytest.param(ON_G1, _line(request="g2.eu.1"), id="another-groups-request"),
    pytest.param(ON_G1, _line(request="g1.us.1"), id="another-locations-request"),
    pytest.param(ON_G1, _line(request="g1.eu.2"), id="another-run"),
    pytest.param(ON_G1, _line(agent="b1"), id="another-agents-name"),
    pytest.param("tocsin_live.g1.eu.1", _line(), id="a-subject-without-the-agent"),
    pytest.param(ON_G1 + ".x", _line(), id="a-subject-with-one-token-more"),
    pytest.param(ON_G1, _line(n=control.MAX_LINES + 1), id="a-line-past-the-last"),
    pytest.param(ON_G1, _line(n=0), id="line-zero"),
    pytest.param(ON_G1, b'{"request": "g1.eu.1"', id="not-json"),
]


class Web:
    """A web's connection with its ``RunLogs`` following g1 and g2, and an agent's."""

    def __init__(self, web: Client, agent: Client) -> None:
        self.web, self.agent = web, agent
        self.runlogs = RunLogs()

    async def kept(self, request: str) -> bool:
        return request in self.runlogs.lines


@pytest.fixture
async def following(nats_server: NatsServer) -> AsyncIterator[Web]:
    w = Web(await nats.connect(nats_server.url), await nats.connect(nats_server.url))
    try:
        for group in ("g1", "g2"):
            await w.runlogs.follow(w.web, group)
        await flushed(w.web)
        yield w
    finally:
        await w.runlogs.close()
        await w.web.close()
        await w.agent.close()


@pytest.mark.parametrize(("subject", "data"), FORGED)
async def test_a_forged_or_oversized_line_is_dropped_and_counted(
    following: Web, subject: str, data: bytes
) -> None:
    await following.agent.publish(subject, data)
    # Then a line as an agent sends it, on the same subscription: once it is kept, the one
    # before was seen.
    await following.agent.publish("tocsin_live.g1.eu.9.a1", _line("g1.eu.9", text="after"))
    await flushed(following.agent)
    await wait_for(lambda: following.kept("g1.eu.9"), what="the agent's line after it")
    assert list(following.runlogs.lines) == ["g1.eu.9"]
    assert following.runlogs.refused == 1


async def test_the_lines_kept_are_bounded_in_bytes(following: Web) -> None:
    """Lines at their bounds (MAX_LINE characters of four bytes each), MAX_LINES of them per
    run, run after run: the oldest runs go once the lines kept weigh KEEP_BYTES."""
    budget = runlogs_module.KEEP_BYTES
    text = "\U0001f514" * control.MAX_LINE
    runs = budget // (control.MAX_LINES * len(text.encode())) + 10
    for run in range(runs):
        request = f"g1.eu.{run}"
        for n in range(1, control.MAX_LINES + 1):
            await following.agent.publish(
                f"tocsin_live.{request}.a1", _line(request, n=n, text=text)
            )
    await flushed(following.agent)
    last = f"g1.eu.{runs - 1}"
    await wait_for(
        lambda: _value(len(following.runlogs.lines.get(last, ())) == control.MAX_LINES),
        what="the last run's lines",
    )
    kept = [line for lines in following.runlogs.lines.values() for line in lines]
    assert sum(len(control.encode(line)) for line in kept) <= budget
    assert "g1.eu.0" not in following.runlogs.lines  # the oldest went first
    assert following.runlogs.refused == 0


async def _value(v: object) -> object:
    return v


# The request log's URL ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_web(nats_url: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    seed = Seeder(database_url)
    seed.config([task_def(1, domain="example")])  # request group g1-example
    await seed.flush()
    settings = WebSettings(cookie_secret="t" * 32, unauthenticated_access="all", nats_url=nats_url)
    async with (
        web_server(database_url, settings) as web,
        httpx.AsyncClient(base_url=web.url, timeout=30) as c,
    ):
        yield c


MALFORMED = [
    pytest.param("%3E", id="the-wildcard-greater-than"),
    pytest.param("*", id="the-wildcard-star"),
    pytest.param("g1-example.*.1", id="a-wildcard-as-location"),
    pytest.param("a%20b", id="a-space"),
    pytest.param("g1-example.default", id="two-parts"),
    pytest.param("g1-example.default.1.x", id="four-parts"),
    pytest.param("g1-example..1", id="an-empty-part"),
    pytest.param("x" * 65 + ".default.1", id="a-part-of-65-characters"),
]


@pytest.mark.parametrize("request_id", MALFORMED)
async def test_the_log_of_a_malformed_request_id_is_refused(
    nats_server: NatsServer, database_url: str, request_id: str
) -> None:
    async with open_web(nats_server.url, database_url) as c:
        status, text = await _answer(c, f"/requests/{request_id}/log")
        assert status == 422, text
        assert "&lt;group&gt;.&lt;location&gt;.&lt;run&gt;" in text  # says what an id is


async def test_the_log_of_an_unknown_group_is_not_found_and_a_known_one_streams(
    nats_server: NatsServer, database_url: str
) -> None:
    async with open_web(nats_server.url, database_url) as c:
        status, text = await _answer(c, "/requests/g9-nowhere.default.1/log")
        assert status == 404, text
        assert "g9-nowhere" in text
        async with c.stream("GET", "/requests/g1-example.default.1/log") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            first: Any = await anext(r.aiter_lines())
            assert first == "retry: 2000"


async def _answer(c: httpx.AsyncClient, path: str) -> tuple[int, str]:
    """The status and, unless it is a stream (which never ends), the body."""
    async with c.stream("GET", path) as r:
        if r.headers["content-type"].startswith("text/event-stream"):
            return r.status_code, "(a stream)"
        return r.status_code, (await r.aread()).decode()
