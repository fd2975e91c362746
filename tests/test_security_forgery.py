"""Finding 1 of issue 10 as it was found: under `tocsin dev --secure`, with the real agent's
own credentials, forged verdicts, configurations, heartbeats and results on the subjects the
agent may publish on change nothing a user sees; each is a dead letter."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats

from events import subjects
from security.client import ClientSecurity
from tests.devproc import (
    free_ports,
    get,
    pg_url,
    ping_demo_heartbeat,
    start,
    stop,
    wait_judged,
    wait_serving,
)


def _forgeries(agent: str, group: str, task: str) -> list[tuple[str, bytes]]:
    now = time.time()
    enc = msgspec.json.encode
    on_agent = subjects.completed(agent, "default", group)
    completion = {
        "type": "check.completed",
        "v": 1,
        "at": now,
        "request": f"{group}.default.1",
        "group": group,
        "agent": agent,
        "location": "default",
        "started": now,
        "observation": {"status": 500},
        "outcomes": [{"task": task, "kind": "status-is", "status": "failure", "detail": "forged"}],
    }
    return [
        (
            on_agent,
            enc(
                {
                    "type": "task.judged",
                    "v": 1,
                    "at": now,
                    "group": group,
                    "completion": 1,
                    "next_run": now + 60,
                    "judgements": [
                        {"task": task, "severity": "critical", "previous": "ok", "reason": "x"}
                    ],
                }
            ),
        ),
        (
            on_agent,
            enc(
                {
                    "type": "config.applied",
                    "v": 1,
                    "at": now,
                    "revision": "r",
                    "source": "forged",
                    "applied_by": agent,
                    "removed": [task],
                }
            ),
        ),
        (
            subjects.heartbeat(agent, "default"),
            enc(
                {
                    "type": "agent.heartbeat",
                    "v": 1,
                    "at": now,
                    "agent": "fake-agent",
                    "location": "elsewhere",
                    "version": "x",
                    "concurrency": 1,
                    "in_flight": 0,
                    "completed": 0,
                    "started": now,
                }
            ),
        ),
        (on_agent, enc(completion)),
        (on_agent, enc({**completion, "request": "no-such-request"})),
        # Another location's request, answered from this agent's subject.
        (on_agent, enc({**completion, "location": "elsewhere", "request": f"{group}.elsewhere.1"})),
        (on_agent, b'{"type":"check.completed","v":1,"at":1e999}'),
        (
            subjects.heartbeat(agent, "default"),
            enc({"type": "agent.heartbeat", "v": 1, "at": 1e300}),
        ),
    ]


async def _publish_as_agent(url: str, creds: Path, messages: list[tuple[str, bytes]]) -> list[int]:
    nc = await nats.connect(url, **ClientSecurity(creds=str(creds)).connect_options())
    try:
        js = nc.jetstream()
        return [(await js.publish(s, d)).seq for s, d in messages]
    finally:
        await nc.close()


async def _db(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def test_forgeries_with_an_agents_credentials_change_nothing_a_user_sees(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ports = free_ports()
    proc = start(data, ports, "--secure")
    base = f"http://127.0.0.1:{ports['web']}"
    try:
        wait_serving(proc)
        # Every task judged before the forgeries: the demo heartbeat pinged, not left to turn
        # late 30 s after start.
        ping_demo_heartbeat(base)
        before = {t["id"]: t for t in wait_judged(base, 90)}
        healthy = next(
            t for t in before.values() if t["url"].endswith("/healthy") and t["severity"] == "ok"
        )
        seqs = asyncio.run(
            _publish_as_agent(
                f"nats://127.0.0.1:{ports['nats']}",
                data / "security" / "creds" / "local.creds",
                _forgeries("local", healthy["group"], healthy["id"]),
            )
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = asyncio.run(_db(pg_url(data, ports["pg"]), "SELECT seq FROM tocsin.position"))
            if rows and rows[0]["seq"] >= max(seqs):
                break
            time.sleep(0.5)
        dead = asyncio.run(
            _db(
                pg_url(data, ports["pg"]),
                "SELECT source_seq FROM tocsin.dead_letters WHERE consumer = 'projector' "
                "AND source_seq = ANY($1::bigint[])",
                seqs,
            )
        )
        assert sorted(r["source_seq"] for r in dead) == sorted(seqs)
        after = {t["id"]: t for t in get(f"{base}/api/tasks")}  # type: ignore[union-attr]
        assert after.keys() == before.keys()  # no task hidden
        assert after[healthy["id"]]["severity"] == "ok"
        agents = {a["name"] for a in get(f"{base}/api/agents")}  # type: ignore[union-attr]
        assert agents == {"local"}
        forged = asyncio.run(
            _db(pg_url(data, ports["pg"]), "SELECT 1 FROM tocsin.results WHERE detail = 'forged'")
        )
        assert not forged
        assert proc.poll() is None
        logs = "".join(p.read_text() for p in (data / "logs").glob("*.log"))
        assert "Traceback" not in logs
    finally:
        stop(proc)
