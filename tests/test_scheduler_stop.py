"""A scheduler stops once asked, and a term ends once its lease is lost, whatever its tasks
await: taking over included, and even when a task drops the cancellation that ends it.

On Python 3.11, ``asyncio.wait_for`` (ours, and nats-py's around every request) drops a
cancellation that lands as what it waits for completes: a lease renewal answered just then
kept renewing after the stop, and the scheduler never ended (a stop in the layout test timed
out after 20 s on a loaded machine). Here the first cancellation of one task is dropped on
purpose, as that race drops it, and the task goes on as it would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from configuration import config as configuration
from events import streams
from runtime import bus, ending
from runtime.embedded import NatsServer
from runtime.pubacks import Publisher
from services.scheduler import layout, service
from services.scheduler.leader import Lease
from services.scheduler.service import Scheduler
from services.scheduler.state import SchedulerOptions
from tests.helpers import dropping_one_cancellation, ended, site_config, wait_for, write_config

TTL = 2.0
#: A task, no agent: requests go unanswered and are judged so, as in the layout test.
SITE = site_config("http://127.0.0.1:9", {"a": ["status-is: 200"]})


class _RenewalDropsTheEnd(Lease):
    async def keep(self) -> None:
        await dropping_one_cancellation(super().keep)


class _WaitDropsTheStop(Lease):
    async def acquire(self) -> None:
        await dropping_one_cancellation(super().acquire)


class _DispatchDropsTheEnd(Scheduler):
    dispatching: asyncio.Task[object] | None = None

    async def _dispatch(self, js: JetStreamContext, publisher: Publisher, lease: Lease) -> None:
        self.dispatching = asyncio.current_task()
        dispatch = super()._dispatch
        await dropping_one_cancellation(lambda: dispatch(js, publisher, lease))


class _LogNeverAnswers(Scheduler):
    """Taking over waits for a log that does not answer (JetStream slow, a large log)."""

    restoring = False

    async def _restore(self, js: JetStreamContext) -> None:
        self.restoring = True
        await asyncio.Event().wait()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    nc = await bus.connect(nats_server.url, "test")
    await streams.ensure(nc.jetstream(), ["default"], streams.Tuning())
    yield nc
    await bus.close(nc)


async def _leading(
    nc: Client, tmp_path: Path, kind: type[Scheduler], lease_kind: type[Lease]
) -> tuple[Scheduler, Lease, asyncio.Task[None]]:
    """A term of a ``kind`` scheduler under a ``lease_kind`` lease, as a replica runs one."""
    config = str(write_config(tmp_path / "c.yaml", SITE))
    js = nc.jetstream()
    scheduler = kind(SchedulerOptions("nats://unused", config, lease_ttl=TTL))
    lease = lease_kind(js, TTL)
    assert await lease.take()
    term = asyncio.create_task(scheduler.lead(nc, js, lease, configuration.parse(config)))
    return scheduler, lease, term


async def test_a_stop_ends_the_term_when_the_renewal_drops_it(nc: Client, tmp_path: Path) -> None:
    scheduler, _, term = await _leading(nc, tmp_path, Scheduler, _RenewalDropsTheEnd)
    await wait_for(lambda: _value(scheduler.config is not None), what="taking over")
    await asyncio.sleep(TTL)  # renewed meanwhile, requests sent and left unanswered
    scheduler.stop()
    await ended(term)


async def test_a_lost_lease_ends_the_term_when_dispatching_drops_it(
    nc: Client, tmp_path: Path
) -> None:
    """Sharded replicas and a scheduler back to standby: no one stopped, the lease lost; the
    term's loops look at the stop only, so nothing but their cancellation ends them."""
    scheduler, lease, term = await _leading(nc, tmp_path, _DispatchDropsTheEnd, Lease)
    assert isinstance(scheduler, _DispatchDropsTheEnd)
    await wait_for(lambda: _value(scheduler.dispatching), what="dispatching")
    await asyncio.sleep(TTL)  # requests sent and left unanswered
    lease.lost.set()
    await ended(term)
    assert scheduler.dispatching is not None and scheduler.dispatching.done()
    assert not scheduler.stopping.is_set()


async def test_a_stop_ends_the_term_while_taking_over(nc: Client, tmp_path: Path) -> None:
    scheduler, _, term = await _leading(nc, tmp_path, _LogNeverAnswers, Lease)
    assert isinstance(scheduler, _LogNeverAnswers)
    await wait_for(lambda: _value(scheduler.restoring), what="taking over")
    scheduler.stop()
    await ended(term)


async def test_a_standby_stops_when_its_wait_for_the_lease_drops_the_stop(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "c.yaml", SITE)
    opts = SchedulerOptions(nats_server.url, str(config), lease_ttl=TTL)
    leader = Scheduler(opts)
    leading = asyncio.create_task(leader.run())
    try:
        await wait_for(lambda: _value(leader.config is not None), what="the leader dispatching")
        monkeypatch.setattr(service, "Lease", _WaitDropsTheStop)
        standby = Scheduler(opts)
        waiting = asyncio.create_task(standby.run())
        await asyncio.sleep(TTL)  # said its number, waiting for the lease the leader holds
        assert not waiting.done(), waiting
        standby.stop()
        await ended(waiting)
    finally:
        leader.stop()
        await ended(leading)


async def test_nothing_of_a_scheduler_runs_on_once_it_stopped(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its saying of the number of shards included, which it cancels as it stops."""
    said: list[asyncio.Task[object] | None] = []
    keep_saying = layout.keep_saying

    async def saying(*args: object) -> None:
        said.append(asyncio.current_task())
        await dropping_one_cancellation(lambda: keep_saying(*args))

    monkeypatch.setattr(layout, "keep_saying", saying)
    config = write_config(tmp_path / "c.yaml", SITE)
    scheduler = Scheduler(SchedulerOptions(nats_server.url, str(config), lease_ttl=TTL))
    running = asyncio.create_task(scheduler.run())
    await wait_for(lambda: _value(scheduler.config is not None), what="dispatching")
    scheduler.stop()
    await ended(running)
    assert said and all(t is not None and t.done() for t in said)


async def test_ended_ends_a_task_whose_wait_for_dropped_the_cancellation() -> None:
    """The race itself, with ``asyncio.wait_for``: what it waits for completes, then the
    cancellation lands before the waiting task resumes (Python 3.11 returns the result)."""
    answers: asyncio.Queue[int] = asyncio.Queue()

    async def renewing() -> None:  # as Lease.keep: only a cancellation ends it
        while True:
            await asyncio.wait_for(answers.get(), 60)

    task = asyncio.create_task(renewing())
    await asyncio.sleep(0)
    answers.put_nowait(1)
    await asyncio.sleep(0)  # the answer taken; the renewal not resumed yet
    assert await ended(asyncio.create_task(ending.ended([task]))) == []
    assert task.done()


async def _value(v: object) -> object:
    return v
