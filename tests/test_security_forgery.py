"""`tocsin dev --secure`: the whole stack on an embedded NATS with authorization on, each
service with its own identity, tasks judged (the demo heartbeat through a ping the web
publishes with its identity), and an anonymous client refused.

Finding 1 of issue 10 as it was found: under `tocsin dev --secure`, with the real agent's
own credentials, forged verdicts, configurations, heartbeats and results on the subjects the
agent may publish on change nothing a user sees; each is a dead letter.

Both tests share one `tocsin dev --secure`, started with every task judged: neither changes
what the other sees (the forgeries are dead letters, which their test proves)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
import pytest

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


@dataclass
class SecureDev:
    proc: subprocess.Popen[str]
    data: Path
    ports: dict[str, int]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"


@pytest.fixture(scope="module")
def secure_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureDev]:
    data = tmp_path_factory.mktemp("secure") / "data"
    ports = free_ports()
    dev = SecureDev(start(data, ports, "--secure"), data, ports)
    try:
        wait_serving(dev.proc)
        # Pinged rather than left to turn late 30 s after start (tests/test_dev.py waits
        # for that): the ping's event is published under the web's own identity.
        ping_demo_heartbeat(dev.base)
        wait_judged(dev.base, 90)
        yield dev
    finally:
        stop(dev.proc)


def test_dev_secure_runs_with_authorization(secure_dev: SecureDev) -> None:
    tasks = wait_judged(secure_dev.base, 90)
    sev = {t["url"].rsplit("/", 1)[-1] + " " + t["check"]: t["severity"] for t in tasks}
    assert sev["healthy status-is"] == "ok" and sev["broken status-is"] == "critical"
    assert sev["demo-job heartbeat"] == "ok"
    assert (secure_dev.data / "security" / "creds" / "local.creds").exists()
    with pytest.raises(Exception):  # noqa: B017 - no credentials, no entry
        asyncio.run(
            nats.connect(
                f"nats://127.0.0.1:{secure_dev.ports['nats']}",
                allow_reconnect=False,
                connect_timeout=3,
            )
        )
    assert secure_dev.proc.poll() is None


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


def test_forgeries_with_an_agents_credentials_change_nothing_a_user_sees(
    secure_dev: SecureDev,
) -> None:
    data, ports, base = secure_dev.data, secure_dev.ports, secure_dev.base
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
    assert secure_dev.proc.poll() is None
    logs = "".join(p.read_text() for p in (data / "logs").glob("*.log"))
    assert "Traceback" not in logs
