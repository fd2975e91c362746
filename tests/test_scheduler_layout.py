"""Schedulers started with another ``--shards`` than the ones running refuse, before they take
any lease, saying both numbers; the running ones go on holding every shard. Replicas of one
number join as before, and once every scheduler stopped the number may change."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from nats.js.kv import KeyValue

from runtime.embedded import NatsServer
from services.scheduler import layout
from services.scheduler.layout import LayoutConflict, conflict
from services.scheduler.leader import Lease
from services.scheduler.service import Scheduler
from services.scheduler.shards import Replica
from services.scheduler.state import SchedulerOptions
from tests.helpers import site_config, wait_for, write_config

TTL = 2.0
SITE = site_config("http://127.0.0.1:9", {"a": ["status-is: 200"]})


@pytest.mark.parametrize(
    ("mine", "found", "refused"),
    [
        pytest.param(3, None, False, id="nothing-said-yet"),
        pytest.param(3, b"3", False, id="the-same-number"),
        pytest.param(3, b"2", True, id="fewer-shards-running"),
        pytest.param(1, b"8", True, id="unsharded-next-to-sharded"),
        pytest.param(8, b"1", True, id="sharded-next-to-unsharded"),
        pytest.param(2, b"\xff", True, id="garbage-in-the-bucket"),
    ],
)
def test_conflict(mine: int, found: bytes | None, refused: bool) -> None:
    reason = conflict(mine, found, TTL)
    assert (reason is not None) == refused
    if reason is not None:
        assert f"--shards {mine}" in reason and "same --shards" in reason


async def test_of_two_numbers_said_at_once_one_is_refused(nats_server: NatsServer) -> None:
    """Two schedulers with different numbers starting at the same moment, each on its own
    connection, both find nothing said: the second to write reads the first's number."""
    a, b = await nats.connect(nats_server.url), await nats.connect(nats_server.url)
    try:
        kvs = [await Lease(nc.jetstream(), TTL).bucket() for nc in (a, b)]
        for _ in range(5):
            await kvs[0].purge(layout.KEY)
            said = await asyncio.gather(
                layout.say(kvs[0], 3, TTL), layout.say(kvs[1], 2, TTL), return_exceptions=True
            )
            assert sum(isinstance(x, LayoutConflict) for x in said) == 1, said
    finally:
        await a.close()
        await b.close()


async def test_nothing_is_dispatched_before_the_number_is_said(nats_server: NatsServer) -> None:
    """The bucket out of reach when a scheduler starts (JetStream electing, NATS away): it
    tries again rather than taking the lease unsaid; a stop meanwhile ends the wait."""
    nc = await nats.connect(nats_server.url)
    try:
        real = await Lease(nc.jetstream(), TTL).bucket()
        failures = 2

        async def bucket() -> KeyValue:
            nonlocal failures
            if failures:
                failures -= 1
                raise TimeoutError("the bucket is out of reach")
            return real

        stopping = asyncio.Event()
        assert await layout.first_said(bucket, 1, TTL, stopping)
        assert failures == 0 and (await real.get(layout.KEY)).value == b"1"
        failures = 1_000
        stopping.set()
        assert not await layout.first_said(bucket, 1, TTL, stopping)
    finally:
        await nc.close()


def _opts(nats: NatsServer, config: Path, shards: int) -> SchedulerOptions:
    return SchedulerOptions(nats.url, str(config), lease_ttl=TTL, shards=shards)


def _service(opts: SchedulerOptions) -> Scheduler | Replica:
    return Replica(opts) if opts.shards > 1 else Scheduler(opts)


@pytest.mark.parametrize(
    ("running", "newcomer"),
    [
        pytest.param(3, 2, id="sharded-3-then-2"),
        pytest.param(3, 1, id="sharded-3-then-unsharded"),
        pytest.param(1, 4, id="unsharded-then-sharded-4"),
    ],
)
async def test_a_scheduler_with_another_number_of_shards_refuses_to_join(
    nats_server: NatsServer, tmp_path: Path, running: int, newcomer: int
) -> None:
    config = write_config(tmp_path / "c.yaml", SITE)
    first = _service(_opts(nats_server, config, running))
    task = asyncio.create_task(first.run())
    try:
        await wait_for(lambda: _serving(first, running), what="every shard held")
        refused = _service(_opts(nats_server, config, newcomer))
        with pytest.raises(LayoutConflict) as exc:
            await asyncio.wait_for(refused.run(), 20)
        assert f"--shards {running}, this one --shards {newcomer}" in str(exc.value)
        assert not task.done()  # the running one goes on
        if isinstance(first, Replica):
            assert len(first.held) == running
        await _joins(_opts(nats_server, config, running), alone=False)
    finally:
        first.stop()
        await asyncio.wait_for(task, 20)
    # Every scheduler stopped: once the number is forgotten, another one starts.
    await asyncio.sleep(TTL + 0.5)
    await _joins(_opts(nats_server, config, newcomer), alone=True)


async def _joins(opts: SchedulerOptions, alone: bool) -> None:
    """A scheduler with ``opts`` runs instead of refusing (``alone``: until it dispatches;
    else for a lease, an unsharded one standing by); then stops."""
    service = _service(opts)
    running = asyncio.create_task(service.run())
    if alone:
        await wait_for(lambda: _serving(service, 1) if not running.done() else _value(True))
    else:
        await asyncio.sleep(TTL)
    assert not running.done(), running.exception()
    service.stop()
    await asyncio.wait_for(running, 20)


async def _serving(service: Scheduler | Replica, shards: int) -> bool:
    """Dispatching: ``shards`` shards held, or the lease when unsharded."""
    if isinstance(service, Replica):
        return len(service.held) >= shards
    return service.config is not None


def test_the_command_exits_2_with_the_reason(nats_server: NatsServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", SITE)

    def scheduler(shards: int) -> subprocess.Popen[str]:
        args = ["--nats-url", nats_server.url, "--config", str(config), "--shards", str(shards)]
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "--log-level", "info", "scheduler", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = scheduler(4)
    try:
        out = ""
        assert first.stderr is not None
        while "shards held" not in out:  # said once its number is in the bucket
            line = first.stderr.readline()
            assert line, f"the first scheduler ended: {out}"
            out += line
        second = scheduler(2)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2, err
        assert "--shards 4, this one --shards 2" in err and "Traceback" not in err
    finally:
        first.terminate()
        first.wait(30)


async def _value(v: object) -> object:
    return v


class _FailsOnStop(Scheduler):
    """A scheduler whose dispatching fails as it stops (whatever a stop may break)."""

    async def _terms(self, nc: object, js: object, first: object) -> None:
        await self.stopping.wait()
        raise RuntimeError("dispatching failed while stopping")


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(Scheduler, id="dispatching-ends-quietly"),
        pytest.param(_FailsOnStop, id="dispatching-fails-as-it-stops"),
    ],
)
async def test_another_number_said_while_running_stops_the_scheduler_with_the_reason(
    nats_server: NatsServer, tmp_path: Path, kind: type[Scheduler]
) -> None:
    """Another number said while this scheduler runs (NATS was away from every scheduler for
    longer than the TTL): it stops, and says why, whatever its dispatching raised meanwhile."""
    config = write_config(tmp_path / "c.yaml", SITE)
    scheduler = kind(_opts(nats_server, config, 1))
    running = asyncio.create_task(scheduler.run())
    nc = await nats.connect(nats_server.url)
    try:
        kv = await Lease(nc.jetstream(), TTL).bucket()
        await wait_for(lambda: _said(kv), what="the scheduler's number said")
        await kv.put(layout.KEY, b"3")
        with pytest.raises(LayoutConflict) as exc:
            await asyncio.wait_for(running, 20)
        assert "--shards 3, this one --shards 1" in str(exc.value)
    finally:
        scheduler.stop()
        await nc.close()


async def _said(kv: KeyValue) -> bool:
    try:
        return (await kv.get(layout.KEY)).value == b"1"
    except Exception:
        return False
