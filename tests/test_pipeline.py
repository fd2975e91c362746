"""The spine end to end against real servers: configuration → scheduler → JetStream →
agent → projector → PostgreSQL → API, and the exactly-once effect of the projector."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import nats

from events import codec, streams
from readmodel import SCHEMA
from services.projector.rebuild import checksum, rebuild
from tests.helpers import Stack, fetch, site_config, wait_for, write_config

PATHS = {
    "healthy": ["status-is: 200", "body-contains: fine"],
    "broken": ["status-is: 200"],
    "wrong-body": ["body-contains: Welcome"],
}


async def _severities(db: str) -> dict[str, str | None]:
    rows = await fetch(db, "SELECT url, check_kind, severity FROM tasks")
    return {f"{r['url'].rsplit('/', 1)[1]} {r['check_kind']}": r["severity"] for r in rows}


async def test_tasks_are_judged_and_follow_the_target(
    nats_server, database_url, demo_target, tmp_path: Path
):
    config = write_config(tmp_path / "c.yaml", site_config(demo_target.url, PATHS))
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler()
    stack.agent()
    stack.projector()
    try:
        expected = {
            "healthy status-is": "ok",
            "healthy body-contains": "ok",
            "broken status-is": "critical",
            "wrong-body body-contains": "critical",
        }

        async def judged() -> bool:
            return await _severities(database_url) == expected

        await wait_for(judged, 30, what="every task judged")
        demo_target.set("broken", status=200)

        async def recovered() -> bool:
            return (await _severities(database_url))["broken status-is"] == "ok"

        await wait_for(recovered, 30, what="the broken endpoint judged ok")
        rows = await fetch(
            database_url,
            "SELECT severity, previous FROM severity_changes "
            "WHERE task_id IN (SELECT id FROM tasks WHERE url LIKE '%/broken') "
            "ORDER BY seq",
        )
        assert [(r["previous"], r["severity"]) for r in rows] == [
            (None, "critical"),
            ("critical", "ok"),
        ]
        results = await fetch(
            database_url, "SELECT count(*) AS n, count(DISTINCT (task_id, seq)) AS d FROM results"
        )
        assert results[0]["n"] == results[0]["d"] > 0
    finally:
        await stack.close()


async def test_redelivered_events_are_applied_once_and_rebuild_matches(
    nats_server, database_url, demo_target, tmp_path: Path
):
    config = write_config(tmp_path / "c.yaml", site_config(demo_target.url, PATHS))
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler()
    stack.agent()
    stack.projector()

    async def some_results() -> bool:
        rows = await fetch(database_url, "SELECT count(*) AS n FROM results")
        return rows[0]["n"] >= 12

    try:
        await wait_for(some_results, 30, what="results")
    finally:
        await stack.close()
    await _project_everything(nats_server.url, database_url, config)
    conn = await asyncpg.connect(database_url)
    before = await checksum(conn)

    # Roll the projector's consumer back: every event is delivered again.
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.delete_consumer(streams.EVENTS, streams.PROJECTOR)
    await streams.ensure(js, [])
    last = (await js.stream_info(streams.EVENTS)).state.last_seq
    await nc.close()
    await _project_everything(nats_server.url, database_url, config)
    assert await checksum(conn) == before
    assert await conn.fetchval(f"SELECT seq FROM {SCHEMA}.position") == last
    reached = await rebuild(nats_server.url, database_url, progress=lambda *a: None)
    assert reached == last
    assert await checksum(conn) == before
    await conn.close()


async def _project_everything(nats_url: str, database_url: str, config: Path) -> None:
    stack = Stack(nats_url, database_url, config)
    stack.projector()
    try:

        async def caught_up() -> bool:
            return await _consumer_pending(nats_url) == 0

        await wait_for(caught_up, 30, what="projector caught up")
    finally:
        await stack.close()


async def _consumer_pending(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(streams.EVENTS, streams.PROJECTOR)
        return info.num_pending + info.num_ack_pending
    finally:
        await nc.close()


async def test_undecodable_event_is_recorded_and_skipped(
    nats_server, database_url, tmp_path, demo_target
):
    config = write_config(tmp_path / "c.yaml", site_config(demo_target.url, PATHS))
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["default"])
    poison = [
        b"not json",
        b'{"type":"nope","v":1,"at":1}',
        b'{"type":"agent.heartbeat","v":99,"at":1}',
        b'{"type":"agent.heartbeat","v":1,"at":"x"}',
        b"x" * (codec.MAX_EVENT_BYTES + 1),
    ]
    for i, data in enumerate(poison):
        await js.publish(f"tocsin.agent.heartbeat.poison{i}", data)
    await nc.close()
    stack = Stack(nats_server.url, database_url, config)
    stack.projector()
    try:

        async def recorded() -> int:
            rows = await fetch(database_url, "SELECT count(*) AS n FROM dead_letters")
            return rows[0]["n"] == len(poison)

        await wait_for(recorded, 30, what="dead letters")
        rows = await fetch(database_url, "SELECT reason FROM dead_letters ORDER BY seq")
        reasons = [r["reason"] for r in rows]
        assert "not a JSON event" in reasons[0]
        assert "unknown event type 'nope'" in reasons[1]
        assert "schema version 99" in reasons[2]
        assert "agent.heartbeat" in reasons[3]
        assert "exceeds" in reasons[4]
        pos = await fetch(database_url, "SELECT undecodable FROM position")
        assert pos[0]["undecodable"] == len(poison)
    finally:
        await stack.close()
