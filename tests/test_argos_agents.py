"""Deployed Argos agents work for Tocsin: the real ``argos agent`` (Argos 0.10.3, in
.venv-argos) polls ``tocsin argos`` and its results are judged exactly as a Tocsin
agent's are, on the same configuration and the same local target."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import nats
import pytest

from events import streams
from events.types import CheckRequested, CheckSpec, Observation
from runtime.embedded import free_port
from services.argos import translate
from services.argos.service import Gateway, GatewayOptions, agent_name
from tests.argos_support import argos_bin
from tests.helpers import Stack, fetch, wait_for, write_config

TOKEN = "argos-agent-token"


@pytest.fixture(scope="module")
def argos() -> Path:
    return argos_bin()


CHECKS = {
    "healthy": [
        "status-is: 200",
        "status-in: [200, 204]",
        "body-contains: fine",
        "body-like: 'f.ne here'",
        "headers-contain: [Content-Type]",
        "headers-have: {content-type: 'text/plain; charset=utf-8'}",
        "headers-like: {content-type: 'text/.*'}",
    ],
    "api/status": [
        "json-contains: [/status, /version]",
        "json-has: {/status: up}",
        "json-like: {/version: '1\\..*'}",
        'json-is: \'{"version": "1.0", "status": "up"}\'',
        "json-has: {/status: down}",
    ],
    "broken": ["status-is: 200", "status-in: [500, 503]"],
    "wrong-body": ["body-contains: Welcome"],
    "healthy?as=json": ["json-contains: [/status]"],
}

EXPECTED = {
    "healthy status-is": "ok",
    "healthy status-in": "ok",
    "healthy body-contains": "ok",
    "healthy body-like": "ok",
    "healthy headers-contain": "ok",
    "healthy headers-have": "ok",
    "healthy headers-like": "ok",
    "api/status json-contains": "ok",
    "api/status json-has /status=up": "ok",
    "api/status json-like": "ok",
    "api/status json-is": "ok",
    "api/status json-has /status=down": "critical",
    "broken status-is": "critical",
    "broken status-in": "ok",
    "wrong-body body-contains": "critical",
    # Not JSON: the check cannot be evaluated.
    "healthy?as=json json-contains": "unknown",
    # Nothing listens there: every check of the request fails.
    "closed status-is": "critical",
}


def _config(tmp_path: Path, target: str) -> Path:
    lines = [
        "general:",
        "  frequency: 2s",
        "  ipv6: false",
        "  timeout: 3s",
        "service:",
        f"  secrets: [{TOKEN}]",
        "websites:",
        f"  - domain: {target}",
        "    paths:",
    ]
    for path, checks in CHECKS.items():
        lines += [f"      - path: /{path}", "        checks:"]
        lines += [f"          - {check}" for check in checks]
    lines += [
        f"  - domain: http://127.0.0.1:{free_port()}",
        "    paths:",
        "      - path: /closed",
        "        checks: [status-is: 200]",
    ]
    return write_config(tmp_path / "c.yaml", "\n".join(lines) + "\n")


async def _severities(db: str) -> dict[str, str | None]:
    rows = await fetch(db, "SELECT url, check_kind, expected, severity FROM tasks")
    out = {}
    for r in rows:
        name = f"{r['url'].split('/', 3)[3]} {r['check_kind']}"
        if r["url"].endswith("/api/status") and r["check_kind"] == "json-has":
            name += " /status=" + ("up" if '"up"' in r["expected"] else "down")
        out[name] = r["severity"]
    return out


@pytest.mark.parametrize("agent", ["tocsin", "argos"])
async def test_argos_agent_results_are_judged_as_a_tocsin_agents(
    agent: str, argos: Path, nats_server, database_url, demo_target, tmp_path: Path
) -> None:
    config = _config(tmp_path, demo_target.url)
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler()
    stack.projector()
    process = None
    if agent == "tocsin":
        stack.agent()
    else:
        port = free_port()
        stack._start(Gateway(GatewayOptions(nats_server.url, str(config), port=port, lease=30)))
        process = await asyncio.create_subprocess_exec(
            str(argos / "argos"),
            "agent",
            f"http://127.0.0.1:{port}",
            TOKEN,
            "--max-tasks",
            "50",
            "--wait-time",
            "1",
            "--name",
            "web-1.example.org",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=(tmp_path / "argos-agent.log").open("w"),
        )
    try:

        async def judged() -> bool:
            return await _severities(database_url) == EXPECTED

        try:
            await wait_for(judged, 60, what="every task judged")
        except AssertionError:
            assert await _severities(database_url) == EXPECTED  # shows the difference
            raise
        demo_target.set("broken", status=200)

        async def recovered() -> bool:
            return (await _severities(database_url))["broken status-is"] == "ok"

        await wait_for(recovered, 30, what="the broken endpoint judged ok")
        if agent == "argos":
            agents = await fetch(database_url, "SELECT name, location FROM agents")
            assert [(a["name"], a["location"]) for a in agents] == [
                ("argos-web-1-example-org", "default")
            ]
            results = await fetch(database_url, "SELECT DISTINCT agent FROM results")
            assert [r["agent"] for r in results] == ["argos-web-1-example-org"]
    finally:
        if process is not None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)
        await stack.close()


async def test_only_service_secrets_get_tasks(nats_server, tmp_path: Path) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9")
    port = free_port()
    stack = Stack(nats_server.url, None, config)
    stack._start(Gateway(GatewayOptions(nats_server.url, str(config), port=port)))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:

            async def up() -> bool:
                try:
                    await c.get("/api/tasks")
                except httpx.TransportError:
                    return False
                return True

            await wait_for(up, 30, what="the gateway listening")
            assert (await c.get("/api/tasks")).status_code in (401, 403)
            wrong = {"Authorization": "Bearer nope"}
            assert (await c.get("/api/tasks", headers=wrong)).status_code == 401
            assert (await c.post("/api/results", json=[], headers=wrong)).status_code == 401
    finally:
        await stack.close()


def test_agent_ids_become_agent_names() -> None:
    assert agent_name("web-1.example.org") == "argos-web-1-example-org"
    assert agent_name("") == "argos-agent"
    assert agent_name("x" * 100) == "argos-" + "x" * 58


@pytest.mark.parametrize(
    ("kind", "tocsin", "argos"),
    [
        ("status-is", 200, "200"),
        ("status-in", [200, 302], "[200, 302]"),
        ("body-contains", "fine", "fine"),
        ("headers-contain", ["content-type"], '["content-type"]'),
        ("headers-have", {"a": "b"}, '{"a": "b"}'),
        ("json-is", '{"a":1}', '{"a":1}'),
        ("http-to-https", {"start": 300, "stop": 400}, '{"range": [300, 400]}'),
        ("http-to-https", [301, 302], '{"list": [301, 302]}'),
        ("ssl-certificate-expiration", "on-check", "on-check"),
    ],
)
def test_expected_values_as_argos_stores_them(kind: str, tocsin: object, argos: str) -> None:
    assert translate.argos_expected(kind, tocsin) == argos


async def test_a_request_whose_agent_vanished_goes_back_to_the_queue(
    nats_server, database_url, demo_target, tmp_path: Path
) -> None:
    """An Argos agent that takes tasks and dies loses nothing: after the lease the requests
    are given back and another agent (here a Tocsin one) completes them."""
    config = _config(tmp_path, demo_target.url)
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler()
    stack.projector()
    port = free_port()
    gateway = stack._start(
        Gateway(GatewayOptions(nats_server.url, str(config), port=port, lease=2))
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth) as c:

            async def taken() -> list:
                try:
                    got = (await c.get("/api/tasks", params={"limit": 100})).json()
                except httpx.TransportError:
                    return []
                return got if isinstance(got, list) else []

            held = await wait_for(taken, 30, what="tasks handed to the vanishing agent")
            # Its results after the lease are refused: the requests are no longer its. The
            # gateway's sweep gives them back on its own tick, not at the lease's very end.
            await wait_for(
                lambda: asyncio.sleep(0, not gateway.leases), what="the leases given back"
            )
            late = [{"task_id": t["id"], "status": "success", "context": {}} for t in held]
            answer = await c.post("/api/results", json=late)
            assert (answer.status_code, answer.json()) == (201, {"result_ids": []})
        stack.agent()

        async def judged() -> bool:
            return await _severities(database_url) == EXPECTED

        await wait_for(judged, 60, what="every task judged after the give-back")

        # The very requests it held, completed by the other agent (a verdict may come from a
        # newer request of the group before the given-back one is folded).
        async def held_done() -> dict[str, str]:
            rows = await fetch(database_url, "SELECT DISTINCT request, agent FROM results")
            done = {r["request"]: r["agent"] for r in rows}
            return done if all(t["task_group"] in done for t in held) else {}

        done = await wait_for(held_done, 30, what="the given-back requests completed")
        assert {done.get(t["task_group"]) for t in held} == {"a1"}
    finally:
        await stack.close()


def _request(*kinds: str) -> CheckRequested:
    return CheckRequested(
        at=1_800_000_000.0,
        request="r1",
        group="g1",
        location="default",
        url="https://example.org/",
        method="GET",
        ip_version=4,
        timeout=10.0,
        due=1_800_000_000.0,
        checks=[CheckSpec(f"t-{k}", k, "on-check" if k.startswith("ssl") else 200) for k in kinds],
    )


NOT_CONNECTED = {
    "error_message": "All connection attempts failed",
    "error_type": "ConnectError",
    "error_details": "Traceback …",
}


def test_a_request_argos_could_not_make_fails_every_check_of_it() -> None:
    req = _request("status-is", "ssl-certificate-expiration")
    results = {t.task: ("failure", NOT_CONNECTED) for t in req.checks}
    done = translate.completion(req, results, "argos-a", "default", 1.0, 1_800_000_001.0)
    assert done.observation.error == "ConnectError: All connection attempts failed"
    assert [(o.status, o.detail) for o in done.outcomes] == [
        ("failure", "ConnectError: All connection attempts failed")
    ] * 2


def test_argos_certificate_days_become_the_expiry_tocsin_grades() -> None:
    req = _request("ssl-certificate-expiration", "status-is", "response-time")
    at = 1_800_000_001.0
    results = {
        "t-ssl-certificate-expiration": ("on-check", {"expires_in": 3}),
        "t-status-is": ("success", {"expected": 200, "retrieved": 200}),
    }
    done = translate.completion(req, results, "argos-a", "default", 1.0, at)
    cert, status, timing = done.outcomes
    assert (cert.status, cert.value) == ("success", at + 3 * 86400)
    assert done.observation == Observation(status=200)
    assert (status.status, timing.status) == ("success", "error")
    assert timing.detail == "an Argos agent cannot run response-time"


def test_a_missing_result_is_an_error_not_a_pass() -> None:
    req = _request("status-is")
    done = translate.completion(req, {}, "argos-a", "default", 1.0, 1_800_000_001.0)
    assert [(o.status, o.detail) for o in done.outcomes] == [
        ("error", "the Argos agent sent no result")
    ]


async def test_a_taken_port_is_an_error_not_a_hang(nats_server, tmp_path: Path) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9")
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), ["default"])
    await nc.close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        gateway = Gateway(GatewayOptions(nats_server.url, str(config), port=port))
        with pytest.raises(OSError, match="in use"):
            await asyncio.wait_for(gateway.run(), 20)
