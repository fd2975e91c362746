"""Scheduler replicas as an operator meets them: SIGHUP to any replica applies its file,
whichever shards it holds (the docs say "or SIGHUP the scheduler"; which one holds shard 0
is none of the operator's business); ``tocsin shards`` says who holds what; the log says
the shards held when they change, not every quarter TTL."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError

from events import codec, subjects
from events.types import ConfigApplied
from runtime import bus
from services import cli
from services.scheduler.shards import Replica
from services.scheduler.state import SchedulerOptions
from tests.helpers import wait_for, write_config
from tests.test_config_apply import V1

TTL = 2.0

V2 = V1 + "      - path: /added\n        checks: [status-is: 200]\n"


async def _applied(nats_url: str) -> int:
    """How many configurations were applied."""
    nc = await bus.connect(nats_url, "test")
    try:
        return len(
            [
                m
                async for m in bus.replay(nc.jetstream(), subjects.CONFIG_APPLIED)
                if isinstance(codec.decode(m.data, m.subject), ConfigApplied)
            ]
        )
    except NotFoundError:  # the stream is not there yet
        return 0
    finally:
        await bus.close(nc)


async def test_sighup_on_a_replica_without_shard_0_applies_the_file(
    nats_server, demo_target, tmp_path: Path
):
    path = write_config(tmp_path / "c.yaml", V1.format(url=demo_target.url))
    opts = SchedulerOptions(nats_server.url, str(path), lease_ttl=TTL, shards=2)
    first, second = Replica(opts), Replica(opts)
    runs = [asyncio.create_task(first.run())]
    try:

        async def holding(r: Replica, n: int) -> bool:
            return len(r.held) == n

        await wait_for(lambda: holding(first, 2), 30, what="both shards held by the first")
        await wait_for(lambda: _applied(nats_server.url), 30, what="the file applied at start")
        runs.append(asyncio.create_task(second.run()))
        await wait_for(lambda: holding(second, 1), 30, what="a shard moved to the second")
        assert 0 not in second.held  # the first keeps its lowest shard
        write_config(path, V2.format(url=demo_target.url))
        second.request_reload()  # what SIGHUP calls

        async def applied_twice() -> bool:
            return await _applied(nats_server.url) == 2

        await wait_for(applied_twice, 20, what="the changed file applied")
    finally:
        first.stop()
        second.stop()
        await asyncio.gather(*runs)


async def test_the_shards_held_are_shown_and_logged_when_they_change(
    nats_server, demo_target, tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="tocsin.scheduler")
    path = write_config(tmp_path / "c.yaml", V1.format(url=demo_target.url))
    opts = SchedulerOptions(nats_server.url, str(path), lease_ttl=TTL, shards=3)
    replicas = [Replica(opts), Replica(opts)]
    runs = [asyncio.create_task(r.run()) for r in replicas]
    try:

        def said() -> list[dict[str, object]]:
            return [r.fields for r in caplog.records if r.getMessage() == "shards held"]  # type: ignore[attr-defined]

        async def shared_and_said() -> bool:
            """Each replica holding some, all held once, and each replica's last line saying
            what it holds among two replicas."""
            held = [set(r.held) for r in replicas]
            last = {f.get("replica"): f for f in said()}
            return (
                all(held)
                and sorted(held[0] | held[1]) == [0, 1, 2]
                and not held[0] & held[1]
                and all(
                    last.get(r.id[:12])
                    == {
                        "shards": ",".join(map(str, sorted(r.held))),
                        "replicas": 2,
                        "replica": r.id[:12],
                    }
                    for r in replicas
                )
            )

        await wait_for(shared_and_said, 30, what="the shards shared and said")
        before = said()
        await asyncio.sleep(2 * TTL)  # eight turns of each replica, nothing changing
        assert said() == before
        assert await asyncio.to_thread(cli.main, ["shards", "--nats-url", nats_server.url]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "3 shards, 2 replica(s) alive"
        for r in replicas:
            assert any(line.startswith(f"replica {r.id[:12]}  ") for line in out[1:3])
            for shard in r.held:
                assert f"shard {shard}  replica {r.id[:12]}" in out
    finally:
        for r in replicas:
            r.stop()
        await asyncio.gather(*runs)
