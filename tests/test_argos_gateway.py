"""``tocsin argos`` answers Argos agents as Argos 0.10.3's agent API does (its routes and
schemas in .venv-argos are the oracle): tasks shaped as its ``Task``, results validated as its
``AgentResult``, task ids never reused across restarts and taken back only from the agent they
were handed to, and a lease that gives a request back while another agent can still answer
within the scheduler's budget."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from checks import request
from checks.completion import bounded
from configuration.config import parse
from events import codec, streams, subjects
from events.types import CheckCompleted
from runtime import bus
from runtime.embedded import free_port
from services.argos.protocol import TaskIds, lease_deadline
from services.argos.service import Gateway, GatewayOptions
from tests.argos_support import argos_bin
from tests.helpers import site_config, wait_for, write_config

TOKEN = "gateway-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Nothing listens there: no agent of these tests makes a request.
SITE = "http://127.0.0.1:9"
CHECKS = ["status-is: 200", "body-contains: fine", "headers-contain: [content-type]"]


def _config(tmp_path: Path, frequency: str = "1m", recurring: str = "") -> Path:
    body = site_config(SITE, {p: CHECKS for p in ("a", "b", "c")}, frequency, "5s")
    body += f"service:\n  secrets: [{TOKEN}]\n"
    if recurring:
        body += f"recurring_tasks:\n  {recurring}\n"
    return write_config(tmp_path / "c.yaml", body)


async def _queue(nats_url: str, config: Path, due: float) -> None:
    """One request per request group of the configuration, as the scheduler publishes them."""
    groups: dict[str, list[Any]] = {}
    for task in parse(config).tasks.values():
        groups.setdefault(task.group, []).append(task)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        for gid, tasks in groups.items():
            rid = request.scheduled_id(gid, "default", due)
            event = request.build(tasks, "default", rid, due, due)
            await js.publish(subjects.requested("default", gid), codec.encode(event))
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def _gateway(
    nats_url: str, config: Path, **kw: Any
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    port = free_port()
    gateway = Gateway(GatewayOptions(nats_url, str(config), port=port, **kw))
    running = asyncio.create_task(gateway.run())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as c:

            async def up() -> bool:
                try:  # an empty body of results takes nothing and answers once serving
                    return (await c.post("/api/results", json=[])).status_code == 201
                except httpx.TransportError:
                    return False

            await wait_for(up, 30, what="the gateway serving")
            yield gateway, c
    finally:
        gateway.stop()
        await asyncio.wait_for(running, 20)


async def _take(c: httpx.AsyncClient, agent: str, count: int, limit: int = 10) -> list[dict]:
    """Tasks handed to ``agent`` until it holds ``count`` of them."""
    held: list[dict] = []

    async def enough() -> bool:
        got = await c.get("/api/tasks", params={"limit": limit, "agent_id": agent})
        held.extend(got.json())
        return len(held) >= count

    await wait_for(enough, 30, what=f"{count} tasks handed to {agent}")
    return held


def _results(tasks: list[dict]) -> list[dict]:
    return [{"task_id": t["id"], "status": "success", "context": {}} for t in tasks]


async def test_results_of_a_gateway_before_a_restart_land_on_no_task(
    nats_server, tmp_path: Path
) -> None:
    """An agent that outlives a restart posts ids of the old gateway: they name no task of the
    new one (ids are never reused), so the other agent's tasks keep their own results."""
    config = _config(tmp_path)
    await _queue(nats_server.url, config, 1_800_000_000.0)
    async with _gateway(nats_server.url, config) as (_, c):
        old = await _take(c, "agent-c", 6, limit=2)
    # Stopping gives C's requests back: B takes them, and the third, from the new gateway.
    async with _gateway(nats_server.url, config) as (gateway, c):
        new = await _take(c, "agent-b", 9)
        assert not {t["id"] for t in old} & {t["id"] for t in new}
        late = await c.post("/api/results", params={"agent_id": "agent-c"}, json=_results(old))
        assert (late.status_code, late.json()) == (201, {"result_ids": []})
        own = await c.post("/api/results", params={"agent_id": "agent-b"}, json=_results(new))
        assert (own.status_code, own.json()) == (201, {"result_ids": [t["id"] for t in new]})
        assert gateway.leases == {}


async def test_a_result_is_taken_only_from_the_agent_its_task_was_handed_to(
    nats_server, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    await _queue(nats_server.url, config, 1_800_000_000.0)
    async with _gateway(nats_server.url, config) as (gateway, c):
        held = await _take(c, "agent-a", 9)
        # As Argos answers a result for a task it does not know: created, and left out.
        foreign = await c.post("/api/results", params={"agent_id": "agent-b"}, json=_results(held))
        assert (foreign.status_code, foreign.json()) == (201, {"result_ids": []})
        assert all(lease.results == {} for lease in gateway.leases.values())
        own = await c.post("/api/results", params={"agent_id": "agent-a"}, json=_results(held))
        assert own.json() == {"result_ids": [t["id"] for t in held]}
        assert gateway.leases == {}


def test_task_ids_are_never_reused_and_stay_json_safe() -> None:
    before = TaskIds(lambda: 1_800_000_000.0)
    burst = [before.next() for _ in range(5)]
    assert burst == list(range(burst[0], burst[0] + 5))
    # Restarted a millisecond later: past every id handed out before.
    assert TaskIds(lambda: 1_800_000_000.001).next() > burst[-1]
    # JavaScript's safe integers (a browser reading the API), until the year 2255.
    assert TaskIds(lambda: 9_000_000_000.0).next() < 2**53


#: Bodies of POST /api/results, with what Argos answers them (its ``list[AgentResult]``).
BODIES = {
    "status-not-argos's": ([{"task_id": "ID", "status": "weird", "context": {}}], 422),
    "task-id-not-an-integer": ([{"task_id": "abc", "status": "success", "context": {}}], 422),
    "context-missing": ([{"task_id": "ID", "status": "success"}], 422),
    "context-not-an-object": ([{"task_id": "ID", "status": "success", "context": "ok"}], 422),
    "not-a-list": ({"task_id": "ID", "status": "success", "context": {}}, 422),
    "a-bad-one-among-good-ones": (
        [
            {"task_id": "ID", "status": "success", "context": {}},
            {"task_id": "ID", "status": "ok", "context": {}},
        ],
        422,
    ),
    "task-id-as-digits": ([{"task_id": "'ID'", "status": "success", "context": {}}], 201),
    "an-exception-context": (
        [
            {
                "task_id": "ID",
                "status": "failure",
                "context": {"error_message": "m", "error_type": "T", "error_details": "d"},
            }
        ],
        201,
    ),
}

_ARGOS_VALIDATES = """
import json, sys
from pydantic import TypeAdapter, ValidationError
from argos.schemas import AgentResult
out = []
for body in json.load(sys.stdin):
    try:
        TypeAdapter(list[AgentResult]).validate_python(body)
        out.append(201)
    except ValidationError:
        out.append(422)
print(json.dumps(out))
"""


def _with_id(body: Any, task_id: int) -> Any:
    text = json.dumps(body).replace("\"'ID'\"", f'"{task_id}"').replace('"ID"', str(task_id))
    return json.loads(text)


def test_the_table_of_bodies_is_argos_own_verdict() -> None:
    bodies = [_with_id(body, 7) for body, _ in BODIES.values()]
    out = subprocess.run(
        [str(argos_bin() / "python"), "-c", _ARGOS_VALIDATES],
        input=json.dumps(bodies),
        capture_output=True,
        text=True,
        check=True,
    )
    assert dict(zip(BODIES, json.loads(out.stdout), strict=True)) == {
        name: status for name, (_, status) in BODIES.items()
    }


@pytest.mark.parametrize(("body", "status"), BODIES.values(), ids=BODIES.keys())
async def test_results_are_validated_as_argos_agent_result(
    body: Any, status: int, nats_server, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    await _queue(nats_server.url, config, 1_800_000_000.0)
    async with _gateway(nats_server.url, config) as (gateway, c):
        held = await _take(c, "agent-a", 9)
        answer = await c.post(
            "/api/results", params={"agent_id": "agent-a"}, json=_with_id(body, held[0]["id"])
        )
        assert answer.status_code == status, answer.text
        recorded = [r for lease in gateway.leases.values() for r in lease.results.values()]
        if status == 422:
            assert answer.json()["detail"][0]["loc"][0] == "body"
            assert recorded == []
        else:
            assert answer.json() == {"result_ids": [held[0]["id"]]}
            assert [s for s, _ in recorded] == [body[0]["status"]]


async def test_tasks_are_shaped_as_argos_and_limit_counts_task_groups(
    nats_server, tmp_path: Path
) -> None:
    """Argos's ``list_tasks`` takes ``limit`` distinct task groups (one request each) with all
    their tasks; it fills ``selected_at`` and gives the website's domain as configured."""
    config = _config(tmp_path)
    await _queue(nats_server.url, config, 1_800_000_000.0)
    async with _gateway(nats_server.url, config) as (_, c):
        tasks = await _take(c, "agent-a", 6, limit=2)
    assert (len(tasks), len({t["task_group"] for t in tasks})) == (6, 2)
    assert {t["domain"] for t in tasks} == {SITE + "/"}
    assert all(datetime.fromisoformat(t["selected_at"]) for t in tasks)
    assert {t["selected_by"] for t in tasks} == {"argos-agent-a"}


@pytest.mark.parametrize(
    ("now", "due", "budget", "timeout", "most", "deadline"),
    [
        pytest.param(1000, 1000, 120, 10, 100, 1060, id="1m-frequency:back-at-half-the-budget"),
        pytest.param(1000, 1000, 60, 10, 100, 1030, id="30s-frequency:back-at-half-the-budget"),
        pytest.param(1000, 1000, 600, 10, 100, 1100, id="5m-frequency:max-lock-seconds"),
        pytest.param(1055, 1000, 120, 10, 100, 1065, id="handed-out-late:still-its-timeout"),
        pytest.param(1000, 1000, 120, 10, 5, 1005, id="max-lock-seconds-below-the-timeout"),
        pytest.param(1000, 1000, 60, 30, 100, 1030, id="timeout-longer-than-frequency"),
    ],
)
def test_a_lease_ends_while_another_agent_can_still_answer(
    now: float, due: float, budget: float, timeout: float, most: float, deadline: float
) -> None:
    assert lease_deadline(now, due, budget, timeout, most) == deadline


@pytest.mark.parametrize(
    ("frequency", "recurring", "lease", "since", "held_for"),
    [
        pytest.param("1m", "", None, "due", 60.0, id="1m-frequency:half-its-2m-budget"),
        # Argos takes 60 or less as its default, 100 (tests/test_argos_leniency.py).
        pytest.param("5m", "max_lock_seconds: 90", None, "taken", 90.0, id="max-lock-seconds"),
        pytest.param("5m", "max_lock_seconds: 40", None, "taken", 100.0, id="max-lock-floor"),
        pytest.param("5m", "max_lock_seconds: 90", 25.0, "taken", 25.0, id="--lease-over-file"),
        pytest.param("5m", "", None, "taken", 100.0, id="argos-default-100s"),
    ],
)
async def test_the_gateway_leases_by_the_schedulers_budget(
    frequency: str,
    recurring: str,
    lease: float | None,
    since: str,
    held_for: float,
    nats_server,
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, frequency, recurring)
    async with _gateway(nats_server.url, config, lease=lease) as (gateway, c):
        # Due as the gateway started: handed out within the timeout (5s) of it.
        await _queue(nats_server.url, config, gateway.started)
        await _take(c, "agent-a", 9)
        for held in gateway.leases.values():
            start = held.req.due if since == "due" else held.started
            assert held.deadline - start == pytest.approx(held_for)


@pytest.mark.parametrize(
    ("status", "context", "said"),
    [
        pytest.param(
            "error",
            {"error_type": "Boom", "error_message": "x" * 70_000},
            bounded("Boom: " + "x" * 70_000),
            id="error-text-past-its-bound",
        ),
        pytest.param(
            "error",
            {"error_type": "Boom", "error_message": "a\x00b"},
            "Boom: a\ufffdb",
            id="error-text-with-a-nul",
        ),
    ],
)
async def test_results_the_log_would_refuse_make_errors_not_dead_letters(
    nats_server, tmp_path: Path, status: str, context: dict[str, Any], said: str
) -> None:
    """An Argos agent's texts made a completion every reader dead-lettered: its tasks were
    judged by nobody. They are now bounded (checks/completion.py), errors judged unknown."""
    config = _config(tmp_path)
    await _queue(nats_server.url, config, 1_800_000_000.0)
    async with _gateway(nats_server.url, config) as (_, c):
        held = await _take(c, "agent-a", 9)
        body = [{"task_id": t["id"], "status": status, "context": context} for t in held]
        posted = await c.post("/api/results", params={"agent_id": "agent-a"}, json=body)
        assert posted.json() == {"result_ids": [t["id"] for t in held]}
    nc = await nats.connect(nats_server.url)
    try:
        completed = [
            codec.decode(m.data, m.subject)  # every one admitted
            async for m in bus.replay(nc.jetstream(), "tocsin.check.completed.>")
        ]
    finally:
        await nc.close()
    assert len(completed) == 3
    for ev in completed:
        assert isinstance(ev, CheckCompleted)
        assert {o.status for o in ev.outcomes} == {"error"}
        assert [o.detail for o in ev.outcomes] == [said] * len(ev.outcomes)


async def test_an_argos_agents_error_quoting_a_secret_is_masked(
    nats_server, tmp_path: Path
) -> None:
    """An Argos agent's error text quotes the URL it asked (httpx: ``for url '…'``): the
    token in its query is masked in the completion, as in the URL the log shows."""
    secret = "ARGOSSECRET1"
    body = site_config(SITE, {f"q?token={secret}": ["status-is: 200"]}, "1m", "5s")
    config = write_config(tmp_path / "c.yaml", body + f"service:\n  secrets: [{TOKEN}]\n")
    await _queue(nats_server.url, config, 1_800_000_000.0)
    async with _gateway(nats_server.url, config) as (_, c):
        (task,) = await _take(c, "agent-a", 1)
        said = f"Server error '502 Bad Gateway' for url '{SITE}/q?token={secret}'"
        context = {"error_type": "HTTPStatusError", "error_message": said}
        result = {"task_id": task["id"], "status": "failure", "context": context}
        await c.post("/api/results", params={"agent_id": "agent-a"}, json=[result])
    nc = await nats.connect(nats_server.url)
    try:
        (completed,) = [m async for m in bus.replay(nc.jetstream(), "tocsin.check.completed.>")]
    finally:
        await nc.close()
    assert secret.encode() not in completed.data
    assert "for url 'http://127.0.0.1:9/q?token=••••" in completed.data.decode()
