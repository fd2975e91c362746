"""``tocsin projector rebuild`` on a log full of poison, on every subject of the contract
(those of the web and the operator too): the live projector runs on, records each bad
message once as a dead letter, and the rebuild ends with the same read models."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
from hypothesis import HealthCheck, given, settings

from events import codec, streams
from events.types import Event, MonitorPinged
from services.projector.rebuild import checksum
from tests.faults.harness import ROOT, Services, wait_projected
from tests.helpers import fetch
from tests.test_contract import hostile_message
from tests.test_events import SAMPLES, subject_of


def _dated_now(event: Event) -> bytes:
    return msgspec.json.encode({**msgspec.json.decode(codec.encode(event)), "at": time.time()})


def _pings() -> list[tuple[str, bytes]]:
    """Pings whose values PostgreSQL refuses (NUL in jsonb) or that no ping endpoint sends."""
    ping = next(e for e in SAMPLES if isinstance(e, MonitorPinged))
    raw = msgspec.json.decode(_dated_now(ping))
    subject = subject_of(ping)
    enc = msgspec.json.encode
    return [
        (subject, enc({**raw, "body": "log\x00line"})),
        (subject, enc({**raw, "source": "\x00"})),
        (subject, enc({**raw, "user_agent": "x" * 100_000})),
        (subject, enc({**raw, "exit_code": 2**70})),
        (subject, enc({**raw, "body_bytes": -1})),
        (subject, enc({**raw, "task": "a.b"})),
    ]


def _hostile(n: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []

    @settings(
        max_examples=n, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(hostile_message())
    def collect(msg: tuple[bytes, str]) -> None:
        out.append((msg[1], msg[0]))

    collect()
    return out


async def test_rebuild_of_a_poison_filled_log_equals_the_live_read_models(
    nats_server: Any, database_url: str, tmp_path: Path
):
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, [])
    valid = [(subject_of(e), _dated_now(e)) for e in SAMPLES]
    published: dict[int, tuple[str, bytes]] = {}
    for subject, data in [*valid, *_pings(), *_hostile(300), *valid]:
        published[(await js.publish(subject, data)).seq] = (subject, data)
    await nc.close()

    (tmp_path / "logs").mkdir()
    svc = Services(nats_server.url, database_url, tmp_path / "none.yaml", tmp_path / "logs")
    try:
        projector = svc.projector()
        await wait_projected(nats_server.url, database_url, 60)
        assert projector.alive, projector.output()[-2000:]
        dead = await fetch(
            database_url,
            # The projector's own records (a folded deadletter event has a seq of its own).
            "SELECT source_seq, count(*) AS n FROM dead_letters WHERE consumer = 'projector' "
            "AND seq = source_seq GROUP BY source_seq",
        )
        recorded = {r["source_seq"]: r["n"] for r in dead}
        assert all(n == 1 for n in recorded.values()), "a message dead-lettered twice"
        for seq, (subject, data) in published.items():
            try:
                codec.decode(data, subject)
            except codec.DecodeError:
                assert recorded.get(seq) == 1, f"{subject} {data[:200]!r} not recorded"
        # The rows of the ping that PostgreSQL would refuse never reach the read models.
        assert not await fetch(
            database_url,
            "SELECT 1 FROM results WHERE agent = 'ping' AND "
            "observation->'facts'->>'body' LIKE 'log%line'",
        )
        conn = await asyncpg.connect(database_url)
        try:
            live = await checksum(conn)
        finally:
            await conn.close()
        await projector.stop()
        rebuild = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "services.cli",
                "projector",
                "rebuild",
                "--nats-url",
                nats_server.url,
                "--database-url",
                database_url,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert rebuild.returncode == 0, rebuild.stderr[-2000:]
        assert "Traceback" not in rebuild.stderr
        conn = await asyncpg.connect(database_url)
        try:
            rebuilt = await checksum(conn)
        finally:
            await conn.close()
        assert rebuilt == live
    finally:
        await svc.close()
