"""``tocsin argos`` under load and abuse: a token before any body, a bound on bodies, one log
line a post, polls answered side by side and at once, and work handed to an agent that left
given back at once."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import httpx
import nats
import pytest

from events import streams
from services.argos.guard import RESULTS_LIMIT
from tests.helpers import wait_for
from tests.test_argos_gateway import AUTH, TOKEN, _config, _gateway, _queue


def _head(port: int, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    """A request's head and the start of its body, over a raw socket; the answer read with the
    rest of the body never sent. Without an answer the read ends at the socket's timeout."""
    lines = [f"{method} {target} HTTP/1.1", "Host: gateway"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            return s.recv(65536)
        except TimeoutError:
            return b"no answer"


async def _ready(nats_url: str, tmp_path: Path) -> Path:
    """A configuration, and the work queue the scheduler would have made (empty)."""
    nc = await nats.connect(nats_url)
    try:
        await streams.ensure(nc.jetstream(), ["default"])
    finally:
        await nc.close()
    return _config(tmp_path)


def _port(c: httpx.AsyncClient) -> int:
    port = c.base_url.port
    assert port is not None
    return port


async def test_a_post_without_the_token_is_refused_before_its_body(
    nats_server, tmp_path: Path
) -> None:
    """69 MB announced, 64 kB sent: the answer comes without the rest (it was read whole)."""
    async with _gateway(nats_server.url, await _ready(nats_server.url, tmp_path)) as (_, c):
        for auth in ({}, {"Authorization": "Bearer nope"}):
            headers = {**auth, "Content-Type": "application/json", "Content-Length": "69000000"}
            answer = await asyncio.to_thread(
                _head, _port(c), "POST", "/api/results", headers, b"[" + b" " * 65535
            )
            assert answer.split(b"\r\n")[0] in (
                b"HTTP/1.1 401 Unauthorized",
                b"HTTP/1.1 403 Forbidden",
            )


async def test_an_agents_post_over_the_bound_is_413(nats_server, tmp_path: Path) -> None:
    """The bound is the web's middleware (its streamed case is tested with the web)."""
    async with _gateway(nats_server.url, await _ready(nats_server.url, tmp_path)) as (_, c):
        announced = {**AUTH, "Content-Type": "application/json"}
        too_long = {**announced, "Content-Length": str(RESULTS_LIMIT + 1)}
        answer = await asyncio.to_thread(
            _head, _port(c), "POST", "/api/results", too_long, b"[" + b" " * 65535
        )
        assert answer.split(b"\r\n")[0] == b"HTTP/1.1 413 Request Entity Too Large"

        # Within the bound, as before.
        assert (await c.post("/api/results", json=[])).status_code == 201


async def test_results_for_unknown_tasks_are_one_log_line(
    nats_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    results = [{"task_id": i, "status": "success", "context": {}} for i in range(20_000)]
    async with _gateway(nats_server.url, await _ready(nats_server.url, tmp_path)) as (_, c):
        with caplog.at_level(logging.WARNING, logger="tocsin.argos"):
            posted = await c.post("/api/results", params={"agent_id": "a"}, json=results)
    assert (posted.status_code, posted.json()) == (201, {"result_ids": []})
    lines = [r for r in caplog.records if r.name == "tocsin.argos"]
    assert [r.getMessage() for r in lines] == ["results for no task handed to this agent"]
    assert lines[0].__dict__["fields"]["count"] == 20_000


async def test_polls_are_answered_side_by_side(nats_server, tmp_path: Path) -> None:
    """Twelve agents polling an empty queue at once, each with the client Argos's agent has
    (httpx's defaults): every one is answered, none gives up."""
    async with _gateway(nats_server.url, await _ready(nats_server.url, tmp_path)) as (_, c):
        url = f"http://127.0.0.1:{_port(c)}/api/tasks"
        async with httpx.AsyncClient(headers=AUTH) as agent:  # httpx's default timeout
            answers = await asyncio.gather(
                *(agent.get(url, params={"agent_id": f"conc{i}"}) for i in range(12))
            )
    assert [(a.status_code, a.json()) for a in answers] == [(200, [])] * 12


async def test_work_of_a_poll_whose_agent_left_goes_back_at_once(
    nats_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An agent that gave up waiting (its client's timeout) never sees what its poll took:
    it goes back to the queue at once, not after the lease (100 s here)."""
    config = _config(tmp_path)
    await _queue(nats_server.url, config, 1_800_000_000.0)
    async with _gateway(nats_server.url, config) as (gateway, c):
        with socket.create_connection(("127.0.0.1", _port(c))) as s:
            s.sendall(
                b"GET /api/tasks?agent_id=gone&limit=10 HTTP/1.1\r\nHost: gateway\r\n"
                + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
            )

        async def handled() -> bool:
            gone = any(lease.agent == "argos-gone" for lease in gateway.leases.values())
            given_back = [r.__dict__.get("fields", {}).get("why") for r in caplog.records]
            return gone or "the agent left before the answer" in given_back

        with caplog.at_level(logging.WARNING, logger="tocsin.argos"):
            await wait_for(handled, 30, what="the poll of the agent that left, handled")
        held: list[dict] = []

        async def all_three() -> bool:
            got = await c.get("/api/tasks", params={"limit": 10, "agent_id": "b"})
            held.extend(got.json())
            return len(held) >= 9

        await wait_for(all_three, 30, what="the requests of the agent that left, given back")
        assert {lease.agent for lease in gateway.leases.values()} == {"argos-b"}
