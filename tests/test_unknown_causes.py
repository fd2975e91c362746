"""Whatever happens to a request, its tasks become ``unknown`` with the reason, within two
frequencies: a request dead-lettered after its deliveries, and a location with no agent.
(An agent exception and a header the HTTP client refuses are error outcomes judged unknown:
tests/test_nothing_silent.py::test_the_agent_never_raises_and_says_why.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats

from events import codec, streams, subjects
from events.types import CheckCompleted, CheckRequested, RequestData
from security.sealing import Sealer, new_location_key
from services.notifier.decide import Intent, decide
from services.notifier.decide import TaskState as NotifierTaskState
from services.notifier.settings import Target
from tests.helpers import Stack, fetch, site_config, wait_for, write_config
from tests.security_support import request_event


async def _unknown(database_url: str, why: str) -> list:
    rows = await fetch(database_url, "SELECT severity, reason FROM tasks")
    ok = rows and all(r["severity"] == "unknown" and why in (r["reason"] or "") for r in rows)
    return rows if ok else []


async def test_a_dead_lettered_request_makes_its_tasks_unknown(
    nats_server, database_url, demo_target, tmp_path: Path
):
    config = write_config(
        tmp_path / "c.yaml", site_config(demo_target.url, {"healthy": ["status-is: 200"]}, "3s")
    )
    stack = Stack(nats_server.url, database_url, config)
    # Redeliveries run out long before two frequencies would.
    stack.scheduler(tuning=streams.Tuning(ack_wait=1.0, max_deliver=2))
    stack.projector()
    nc = await nats.connect(nats_server.url)

    async def crashing_agent() -> None:
        """Takes every request and never answers: an agent dying on it, each time."""
        js = nc.jetstream()
        while True:
            try:
                sub = await js.pull_subscribe_bind(durable="agents-default", stream=streams.WORK)
                break
            except Exception:
                await asyncio.sleep(0.2)
        while True:
            try:
                await sub.fetch(10, timeout=1)
            except Exception:
                await asyncio.sleep(0.1)

    worker = asyncio.create_task(crashing_agent())
    try:
        rows = await wait_for(
            lambda: _unknown(database_url, "dead-lettered"), 40, what="tasks unknown"
        )
        assert "2 deliveries" in rows[0]["reason"]
    finally:
        worker.cancel()
        await nc.close()
        await stack.close()


async def test_no_agent_in_the_location_makes_its_tasks_unknown(
    nats_server, database_url, demo_target, tmp_path: Path
):
    config = write_config(
        tmp_path / "c.yaml", site_config(demo_target.url, {"healthy": ["status-is: 200"]}, "2s")
    )
    stack = Stack(nats_server.url, database_url, config)
    # The default redeliveries (5 × 30 s) must not delay the verdict: nobody redelivers.
    stack.scheduler()
    stack.projector()
    try:
        rows = await wait_for(
            lambda: _unknown(database_url, "no agent of default answered"), 30, what="unknown"
        )
        assert rows[0]["reason"].startswith("no result for ")
    finally:
        await stack.close()


def test_unknown_alerts_like_any_severity():
    def targets(severity: str) -> list[Target]:
        return [Target("local")] if severity in ("critical", "unknown") else []

    for severity in ("critical", "unknown"):
        intents, told = decide(severity, 1, 100.0, 0, targets, NotifierTaskState())
        assert intents == [Intent("local", "alert", severity, "ok")]
        assert told["local"].severity == severity


async def test_an_agent_without_the_location_key_answers_error_not_silence(
    nats_server, demo_target, tmp_path: Path
):
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["default"])
    _, public = new_location_key()
    subject, data, msg_id = request_event(
        "default", "g1", f"{demo_target.url}/healthy", data=RequestData(headers={"X-Key": "s3"})
    )
    req = codec.decode(data, subject)
    assert isinstance(req, CheckRequested)
    req = Sealer({"default": public}).seal(req)
    assert req.sealed is not None
    sub = await js.subscribe(subjects.completed("a1", "default", "g1"), ordered_consumer=True)
    await js.publish(subject, codec.encode(req), headers={"Nats-Msg-Id": msg_id})
    stack = Stack(nats_server.url, None, tmp_path / "unused.yaml")
    stack.agent("a1")
    try:
        msg = await sub.next_msg(timeout=20)
        done = codec.decode(msg.data, msg.subject)
        assert isinstance(done, CheckCompleted)
        assert [o.status for o in done.outcomes] == ["error"]
        assert "no location key" in done.outcomes[0].detail

        async def acked() -> bool:  # answered and acked, not left to redeliver
            return (await js.stream_info(streams.WORK)).state.messages == 0

        await wait_for(acked, 10, what="the request acked")
    finally:
        await stack.close()
        await nc.close()
