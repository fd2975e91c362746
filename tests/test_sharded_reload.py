"""SIGHUP to any scheduler replica applies its file, whichever shards it holds: the docs say
"or SIGHUP the scheduler", and an operator cannot tell which replica holds shard 0."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nats.js.errors import NotFoundError

from events import codec, subjects
from events.types import ConfigApplied
from runtime import bus
from services.scheduler.shards import Replica
from services.scheduler.state import SchedulerOptions
from tests.helpers import wait_for, write_config
from tests.test_config_apply import V1

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
    opts = SchedulerOptions(nats_server.url, str(path), lease_ttl=2.0, shards=2)
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
