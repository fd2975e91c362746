"""Check now at its edges: a heartbeat monitor (nothing to run: its pings judge it), the rate
limit as "at most once per N s" (not fixed windows), and the ping URL with a trailing slash.
Real NATS, PostgreSQL and web; the press instants are parameters, not the clock."""

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
from events import codec, control, streams, subjects
from events.types import MonitorPinged, TaskDef
from runtime import bus
from security.sealing import Sealer
from services import cli
from services.scheduler import ondemand
from services.web import authdb
from services.web.settings import WebSettings
from tests.helpers import DemoTarget, Stack, fetch, wait_for, write_config
from tests.web_fixtures import web_server

KEY = "6f1c1bd2-5a43-4cb6-9d55-0a3f1f7e2b10"
CONFIG = """
general:
  frequency: 1h
  ipv6: false
websites:
  - domain: heartbeat://nightly-backup
    checks:
      - heartbeat: {{uuid: {key}, period: 1h, grace: 1h}}
  - domain: {url}
    paths:
      - path: /broken
        checks:
          - status-is: 200
"""
PUSH_REFUSAL = "a heartbeat monitor is judged on its pings; nothing to run now"


class Running:
    def __init__(self, web: Any, db: str, nats_url: str) -> None:
        self.web, self.db, self.nats_url = web, db, nats_url

    async def task(self, kind: str) -> dict[str, Any]:
        async def found() -> list[asyncpg.Record]:
            return await fetch(self.db, "SELECT * FROM tasks WHERE check_kind = $1", kind)

        rows = await wait_for(found, what=f"the {kind} task in the read model")
        return dict(rows[0])

    async def write_token(self) -> str:
        conn = await asyncpg.connect(self.db)
        try:
            return await authdb.create_token(conn, "script", "write")
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def running(
    nats_url: str, db: str, target: DemoTarget, tmp_path: Path
) -> AsyncIterator[Running]:
    config = write_config(tmp_path / "c.yaml", CONFIG.format(key=KEY, url=target.url))
    stack = Stack(nats_url, db, config)
    stack.scheduler(check_now_every=3600.0)
    stack.projector()
    settings = WebSettings(cookie_secret="n" * 32, nats_url=nats_url)
    try:
        async with web_server(db, settings) as web:
            yield Running(web, db, nats_url)
    finally:
        await stack.close()


async def test_check_now_of_a_heartbeat_monitor_says_there_is_nothing_to_run(
    nats_server, database_url, demo_target, tmp_path, capsys
):
    async with running(nats_server.url, database_url, demo_target, tmp_path) as s:
        monitor = await s.task("heartbeat")
        write = {"Authorization": f"Bearer {await s.write_token()}"}
        async with httpx.AsyncClient(base_url=s.web.url, headers=write) as c:
            # (what is asked, status, the reason in the answer)
            cases = [
                (f"/api/tasks/{monitor['id']}/check", 409, PUSH_REFUSAL),
                (f"/api/domains/{quote(monitor['domain'], safe='')}/check", 409, PUSH_REFUSAL),
                ("/api/tasks/nope/check", 404, "no task 'nope' in the configuration in force"),
            ]
            for path, status, reason in cases:
                r = await c.post(path)
                assert (r.status_code, r.json()["detail"]) == (status, reason), path
        args = ["check-now", monitor["id"], "--nats-url", nats_server.url]
        assert await asyncio.to_thread(cli.main, args) == 2
        assert PUSH_REFUSAL in capsys.readouterr().err
        nc = await bus.connect(nats_server.url, "test")
        try:
            with pytest.raises(request.CheckNowError) as refused:
                await request.ask_now(nc, control.CheckNow(by="test", task=monitor["id"]))
            assert refused.value.refused and not refused.value.unknown
        finally:
            await bus.close(nc)


# A request group of its own per case: the presses of one case never see another's.
def _group(case: str) -> list[TaskDef]:
    return [
        TaskDef(
            id=f"t-{case}",
            group=f"g-{case}",
            domain="rate.example",
            url="https://rate.example/",
            method="GET",
            ip_version=4,
            check="status-is",
            expected=200,
            frequency=3600.0,
            locations=["default"],
        )
    ]


#: An instant on a 30 s boundary: the old fixed windows began there.
T0 = 1_800_000_000.0
assert T0 % 30 == 0
RATE_CASES = [
    # The old fixed windows queued both: the presses fell in two slots.
    pytest.param([T0 - 0.1, T0 + 0.4], [True, False], id="half-a-second-apart-across-a-boundary"),
    pytest.param([T0, T0 + 29.999], [True, False], id="just-within-the-limit"),
    pytest.param([T0, T0 + 30], [True, True], id="exactly-the-limit-later"),
    pytest.param([T0, T0 + 20, T0 + 30], [True, False, True], id="counted-from-the-queued-press"),
    pytest.param([T0 + 10, T0 + 9], [True, False], id="a-press-with-a-clock-behind"),
]


@pytest.mark.parametrize(("presses", "queued"), RATE_CASES)
async def test_check_now_runs_at_most_once_per_limit(nats_server, presses, queued, request_id):
    nc = await bus.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        groups = {request_id: _group(request_id)}
        ask = control.CheckNow(by="test", task=f"t-{request_id}")
        got = []
        for at in presses:
            answer = await ondemand.run_now(js, groups, Sealer({}), ask, 30.0, at)
            got.append(answer.requests[0].queued)
        assert got == queued
        # What the log holds: one request per press answered "queued".
        log = [
            m async for m in bus.replay(js, subjects.requested_now("default", f"g-{request_id}"))
        ]
        assert len(log) == queued.count(True)
    finally:
        await bus.close(nc)


async def test_two_schedulers_answering_at_once_queue_one_request(nats_server):
    # Two replicas in the middle of a handover answer the same press at the same instant:
    # the log's compare-and-set on the group's subject lets one publish.
    nc = await bus.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        groups = {"g-race": _group("race")}
        ask = control.CheckNow(by="test", task="t-race")
        answers = await asyncio.gather(
            *(ondemand.run_now(js, groups, Sealer({}), ask, 30.0, T0 + i) for i in range(4))
        )
        assert sorted(a.requests[0].queued for a in answers) == [False, False, False, True]
        assert len({a.requests[0].request for a in answers}) == 1
    finally:
        await bus.close(nc)


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(subjects.CONFIG_APPLIED, id="the-configuration"),
        pytest.param(subjects.judged("g-reply"), id="a-judgement"),
        pytest.param(subjects.requested("default", "g-reply"), id="a-request"),
    ],
)
async def test_check_now_is_answered_only_in_an_inbox(nats_server, reply):
    """A "check now" handing a subject of the log as the one to answer on: the scheduler, which
    may publish there, answers nowhere (JetStream would keep the answer as an event)."""
    nc = await bus.connect(nats_server.url, "test")
    stopping = asyncio.Event()
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        groups = {"g-reply": _group("reply")}
        serving = asyncio.create_task(
            ondemand.serve(nc, js, lambda: groups, lambda: [], Sealer({}), stopping, 3600.0)
        )
        ask = control.CheckNow(by="test", task="t-reply")
        first = await request.ask_now(nc, ask)  # answered: the scheduler listens
        assert [a.queued for a in first] == [True]
        await nc.publish(subjects.CHECK_NOW, control.encode(ask), reply=reply)
        # Asked again as a client asks: once answered, the one before was handled (one
        # subscription takes them in order).
        again = await request.ask_now(nc, ask)
        assert [a.queued for a in again] == [False]  # rate limited since the first
        mark = await js.publish(subjects.deadletter("test-mark"), b"{}")
        kept = [m.subject async for m in bus.replay(js, subjects.ALL)]
        assert reply not in kept and len(kept) == mark.seq == 2  # the request, the mark
    finally:
        stopping.set()
        await serving
        await bus.close(nc)


@pytest.fixture
def request_id(request: pytest.FixtureRequest) -> str:
    return request.node.callspec.id


PING_CASES = [
    # (method, suffix after /ping/<uuid>, kind recorded, exit code recorded)
    ("GET", "/", "success", None),
    ("HEAD", "/", "success", None),
    ("POST", "/", "success", None),
    ("PUT", "/", "success", None),
    ("GET", "/start/", "start", None),
    ("POST", "/fail/", "fail", None),
    ("GET", "/0/", "success", 0),
    ("POST", "/3/", "fail", 3),
]


async def test_a_ping_url_with_a_trailing_slash_is_recorded(
    nats_server, database_url, demo_target, tmp_path
):
    # curl -fsS without -L took the redirect to the canonical URL as a success: never recorded.
    async with running(nats_server.url, database_url, demo_target, tmp_path) as s:
        monitor = await s.task("heartbeat")
        async with httpx.AsyncClient(base_url=s.web.url) as c:
            for method, suffix, _, _ in PING_CASES:
                r = await c.request(method, f"/ping/{KEY}{suffix}")
                assert r.status_code == 200, (method, suffix, r.status_code)
        nc = await bus.connect(nats_server.url, "test")
        try:
            pings = [
                codec.decode(m.data, m.subject)
                async for m in bus.replay(nc.jetstream(), subjects.pinged(monitor["grp"]))
            ]
        finally:
            await bus.close(nc)
        assert all(isinstance(p, MonitorPinged) for p in pings)
        assert [(p.kind, p.exit_code) for p in pings] == [(k, x) for _, _, k, x in PING_CASES]
