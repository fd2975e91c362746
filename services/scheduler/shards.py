"""Scheduler replicas sharing the work: task groups hash into ``--shards`` shards, each
dispatched and judged by the one replica that holds its lease.

Each replica keeps a membership key (``scheduler.replica.<id>``) alive in the lease bucket
and, every quarter TTL, counts the live ones and aims at its fair share, at most
ceil(shards / replicas): it takes free shard leases (the same create / compare-and-set
lease as one scheduler's, one key per shard) while under it and gives leases back while
over it. For each shard held it runs a whole scheduler over that shard's groups
(``Scheduler`` with ``shard``): restored from the log when taken, stopped before its lease
is given back. A dead replica's leases and membership key expire with the bucket's TTL,
so its shards move to the others within one lease (plus a quarter TTL to notice).

Completions cannot be split by subject (the subject names the agent and the group, not the
shard), so every shard has a durable completions consumer of its own that sees every
completion and judges only its groups: the consumer survives a shard's move, and the
new holder continues from its ack floor. Requests keep their deterministic message ids,
so a request published twice around a move lands once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import uuid
import zlib

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NoKeysError

from configuration import config as configuration
from configuration.diff import TooLarge
from configuration.inforce import Refused, apply_config, who
from events import streams
from runtime import bus, ending
from services.scheduler import layout
from services.scheduler.heartbeats import dispatched
from services.scheduler.leader import Lease
from services.scheduler.plan import work_tuning
from services.scheduler.service import Scheduler, SchedulerOptions
from services.scheduler.service import main as main_one
from services.scheduler.state import log

MEMBERS = "scheduler.replica."


def shard_key(shard: int) -> str:
    return f"scheduler.shard.{shard}"


def fair_share(shards: int, replicas: int) -> int:
    """The most shards one replica should hold with ``replicas`` alive."""
    return math.ceil(shards / max(1, replicas))


class Replica:
    def __init__(self, opts: SchedulerOptions) -> None:
        self.opts = opts
        self.id = uuid.uuid4().hex
        self.stopping = asyncio.Event()
        self.held: dict[int, tuple[Scheduler, asyncio.Task[None]]] = {}
        #: The file as last read: a shard taken starts with its settings and secret values.
        self.file: configuration.Config | None = None
        self.consumers_ready = False
        self.reload_requested = asyncio.Event()
        #: What was last said of the shards held (logged when it changes only).
        self._said: tuple[list[int], int] | None = None

    def stop(self) -> None:
        self.stopping.set()

    def request_reload(self) -> None:
        self.reload_requested.set()

    async def _reloads(self, js: JetStreamContext) -> None:
        """SIGHUP: this replica applies the file, as ``tocsin config apply FILE`` would,
        whichever shards it holds (none included: an operator signals any replica); every
        shard held then takes its settings and secret values, and shards taken later start
        from it."""
        while not self.stopping.is_set():
            await self.reload_requested.wait()
            self.reload_requested.clear()
            try:
                cfg = configuration.parse(self.opts.config_path)
                await apply_config(js, cfg, self.opts.applied_by or who())
            except (configuration.ConfigError, TooLarge, Refused) as exc:
                log.error(
                    "configuration refused; the previous one stays in force", problems=str(exc)
                )
                continue
            except Exception as exc:
                if not streams.transient(exc):
                    raise
                log.error("configuration not applied, NATS away: send SIGHUP again", error=str(exc))
                continue
            self.file = cfg
            for scheduler, _ in self.held.values():
                scheduler.request_reload()

    async def run(self) -> None:
        self.file = configuration.parse(self.opts.config_path)  # refuse to start on a bad one
        nc = await bus.connect(self.opts.nats_url, "scheduler", self.stopping)
        js = nc.jetstream()
        try:
            tuning = work_tuning(self.opts.tuning, dispatched(self.file.tasks.values()))
            await streams.ensure_retrying(js, self.file.locations, tuning, self.stopping)
            reloads = asyncio.create_task(self._reloads(js))
            reloads.add_done_callback(lambda _: self.stop())  # only a bug ends it: raised below
            try:
                await self._balancing(nc, js)
            finally:
                failed = await ending.ended([reloads])
            if failed:
                raise failed[0]
        finally:
            for shard in list(self.held):
                await self._give_back(shard)
            with contextlib.suppress(Exception):
                kv = await Lease(js, self.opts.lease_ttl, self.opts.tuning.replicas).bucket()
                await kv.delete(MEMBERS + self.id)
            await bus.close(nc)

    async def _balancing(self, nc: Client, js: JetStreamContext) -> None:
        while not self.stopping.is_set():
            try:
                await self._balance(nc, js)
            except Exception as exc:
                if not streams.transient(exc):
                    raise
                log.warning("could not balance the shards", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.opts.lease_ttl / 4)

    async def _balance(self, nc: Client, js: JetStreamContext) -> None:
        kv = await Lease(js, self.opts.lease_ttl, self.opts.tuning.replicas).bucket()
        # Refused (``LayoutConflict``, not transient: the replica exits) before any lease when
        # the schedulers running split the groups otherwise.
        await layout.say(kv, self.opts.shards, self.opts.lease_ttl)
        # Where this replica runs, for ``tocsin shards`` to say.
        await kv.put(MEMBERS + self.id, f"{socket.gethostname()} pid {os.getpid()}".encode())
        if not self.consumers_ready:  # here, not in run: retried like the rest on NATS away
            await streams.ensure_shards(js, self.opts.shards, self.opts.tuning)
            self.consumers_ready = True
        for shard, (_, term) in list(self.held.items()):
            if term.done():  # its lease was lost: stopped dispatching already
                del self.held[shard]
                if not term.cancelled() and term.exception() is not None:
                    raise term.exception()  # type: ignore[misc]  # a loop died: a bug, exit
        try:
            alive = sum(1 for k in await kv.keys() if k.startswith(MEMBERS))
        except NoKeysError:
            # Our own key was put just now: a listing that missed it knows nothing (it said 1
            # replica among 3 alive). Nothing is taken or given back on it.
            return
        want = fair_share(self.opts.shards, alive)
        for shard in sorted(self.held)[want:]:
            await self._give_back(shard)
        # Start looking at a place of our own, so replicas do not all race for shard 0.
        start = zlib.crc32(self.id.encode()) % self.opts.shards
        for i in range(self.opts.shards):
            if len(self.held) >= want or self.stopping.is_set():
                break
            shard = (start + i) % self.opts.shards
            if shard in self.held:
                continue
            lease = Lease(
                js, self.opts.lease_ttl, self.opts.tuning.replicas, shard_key(shard), self.id
            )
            if await lease.take():
                self.held[shard] = self._serve(nc, js, shard, lease)
        said = (sorted(self.held), alive)
        if said != self._said:  # every quarter TTL unchanged was 34,500 lines a day
            self._said = said
            log.info(
                "shards held",
                shards=",".join(map(str, said[0])),
                replicas=alive,
                replica=self.id[:12],
            )

    def _serve(
        self, nc: Client, js: JetStreamContext, shard: int, lease: Lease
    ) -> tuple[Scheduler, asyncio.Task[None]]:
        scheduler = Scheduler(self.opts, shard)
        file = self.file
        assert file is not None

        async def term() -> None:
            try:
                await scheduler.lead(nc, js, lease, file)
            finally:
                await lease.release()

        return scheduler, asyncio.create_task(term())

    async def _give_back(self, shard: int) -> None:
        """Stop dispatching the shard, then release its lease (in that order)."""
        scheduler, term = self.held.pop(shard)
        scheduler.stop()
        with contextlib.suppress(Exception):
            await term
        log.info("shard given back", shard=shard)


async def main(opts: SchedulerOptions) -> None:
    if opts.shards == 1:
        await main_one(opts)
        return
    replica = Replica(opts)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, replica.stop)
    loop.add_signal_handler(signal.SIGINT, replica.stop)
    loop.add_signal_handler(signal.SIGHUP, replica.request_reload)
    await replica.run()
