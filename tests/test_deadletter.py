"""A request no agent completes within max_deliver deliveries becomes a deadletter event and a
row of the read model, and its group is tried again later: never a silent drop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats

from events import codec, streams
from events.types import CheckRequested
from tests.helpers import Stack, fetch, site_config, wait_for, write_config


async def test_request_out_of_deliveries_is_dead_lettered(
    nats_server, database_url, demo_target, tmp_path: Path
):
    config = write_config(
        tmp_path / "c.yaml", site_config(demo_target.url, {"healthy": ["status-is: 200"]}, "3s")
    )
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler(tuning=streams.Tuning(ack_wait=1.0, max_deliver=2))
    stack.projector()
    # A worker that takes requests and never acks them: a real client, crashing every time.
    nc = await nats.connect(nats_server.url)
    taken: list[CheckRequested] = []

    async def black_hole() -> None:
        js = nc.jetstream()
        while True:
            try:
                sub = await js.pull_subscribe_bind(durable="agents-default", stream=streams.WORK)
                break
            except Exception:
                await asyncio.sleep(0.2)
        while True:
            try:
                msgs = await sub.fetch(10, timeout=1)
            except Exception:  # no request waiting: try again
                await asyncio.sleep(0.1)
                continue
            for msg in msgs:
                ev = codec.decode(msg.data, msg.subject)
                assert isinstance(ev, CheckRequested)
                taken.append(ev)

    worker = asyncio.create_task(black_hole())
    try:

        async def dead() -> list:
            return await fetch(database_url, "SELECT * FROM dead_letters")

        rows = await wait_for(dead, 40, what="a dead-lettered request")
        row = rows[0]
        assert row["kind"] == "max_deliver"
        assert row["stream"] == "WORK"
        assert row["subject"].startswith("tocsin.check.requested.default.")
        assert "2 deliveries" in row["reason"]
        dead = codec.decode(row["excerpt"].encode(), row["subject"])
        assert isinstance(dead, CheckRequested) and row["grp"] == dead.group
        assert [t.request for t in taken].count(dead.request) == 2  # max_deliver deliveries
        js = nc.jetstream()
        info = await js.stream_info(streams.WORK)
        # Recorded, then removed from the queue: nothing older is left in it. The group's next
        # request (due a frequency after the dead letter) may already be there when the
        # projector lags, so the queue need not be empty.
        assert info.state.first_seq > row["source_seq"]
    finally:
        worker.cancel()
        await nc.close()
        await stack.close()
