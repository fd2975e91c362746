"""One active scheduler per key at a time: a lease in a JetStream key-value bucket.

The holder renews the key with a compare-and-set on its revision; a standby
takes it only once it expired (the bucket's TTL). Two schedulers started at
once therefore never both dispatch, and a dead leader is replaced within a TTL.
Deterministic message ids on requests remain the second line of defence.
One scheduler leases ``scheduler``; sharded replicas lease one key per shard
(``services/scheduler/shards.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from runtime.logs import Log

log = Log("tocsin.scheduler.leader")

BUCKET = "tocsin_leases"
KEY = "scheduler"
#: Seconds a lease is given back within at most (``Lease.release``).
RELEASE_WAIT = 1.0
#: Part of the TTL the holder stops short of, by its own clock, when no renewal confirmed the
#: lease since: what it publishes after a check must land before the lease may expire on the
#: server (a turn of dispatching, its clock's drift). Renewed every quarter TTL, a holder
#: reaches it only when two renewals in a row did not land.
FENCE = 0.25


class Lease:
    def __init__(
        self,
        js: JetStreamContext,
        ttl: float = 10.0,
        replicas: int = 1,
        key: str = KEY,
        holder: str | None = None,
    ) -> None:
        self.js = js
        self.key = key
        self.ttl = ttl
        self.replicas = replicas
        #: The key's value while held: a shard's says which replica holds it.
        self.holder = holder or uuid.uuid4().hex
        self.held = asyncio.Event()
        self.lost = asyncio.Event()
        self._revision: int | None = None
        self._kv: KeyValue | None = None
        #: Monotonic time the last create or renewal that succeeded was sent at: the server
        #: stored it later, so the lease expires there no sooner than a TTL after it.
        self._confirmed = -float("inf")

    def holds(self) -> bool:
        """Whether this process can prove, by its own clock, that it still holds the lease:
        confirmed less than a TTL (minus ``FENCE``) ago. Paused past it (SIGSTOP, a frozen
        VM) or cut from NATS, it publishes nothing for the lease's work until a renewal
        confirms it again: another holder may have taken it meanwhile (fencing)."""
        return time.monotonic() < self._confirmed + self.ttl * (1 - FENCE)

    async def bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self.js.key_value(BUCKET)
            except BucketNotFoundError:
                self._kv = await self.js.create_key_value(
                    KeyValueConfig(
                        bucket=BUCKET,
                        history=1,
                        ttl=self.ttl,
                        storage=StorageType.FILE,
                        replicas=self.replicas,
                    )
                )
        return self._kv

    async def acquire(self) -> None:
        """Wait until this process holds the lease (NATS may be away meanwhile: keep trying)."""
        while True:
            if await self.take():
                return
            await asyncio.sleep(self.ttl / 4)

    async def take(self) -> bool:
        """One attempt at the lease: True when this process holds it now."""
        with contextlib.suppress(KeyWrongLastSequenceError, NotFoundError, Exception):
            kv = await self.bucket()
            sent = time.monotonic()
            self._revision = await kv.create(self.key, self.holder.encode())
            self._confirmed = sent
            self.held.set()
            log.info("scheduler lease acquired", holder=self.holder, key=self.key)
            return True
        return False

    async def keep(self) -> None:
        """Renew until the lease is lost, then set ``lost`` and return.

        Lost means another scheduler took it, or no renewal succeeded for a whole TTL (NATS
        away or this process stalled): the key may have expired server-side by then, so a
        standby may already be dispatching and this process must stop doing so.
        """
        while True:
            renewed = self._confirmed
            left = self.ttl - (time.monotonic() - renewed)
            await asyncio.sleep(max(0.0, min(self.ttl / 4, left)))
            sent = time.monotonic()
            try:
                kv = await self.bucket()
                # The request must not outlive the lease it renews.
                self._revision = await asyncio.wait_for(
                    kv.update(self.key, self.holder.encode(), last=self._revision),
                    max(0.5, self.ttl - (sent - renewed)),
                )
                self._confirmed = sent
            except KeyWrongLastSequenceError:
                # Another holder, or the key expired while NATS was away (it is gone then).
                log.warning("scheduler lease lost (taken over or expired)")
                self.lost.set()
                return
            except Exception as exc:  # NATS away: keep trying until the TTL has passed
                if time.monotonic() - renewed >= self.ttl:
                    log.warning(
                        "scheduler lease could not be renewed within its ttl",
                        error=str(exc) or type(exc).__name__,
                    )
                    self.lost.set()
                    return

    async def release(self) -> None:
        """Give the lease back for a standby to take at once; NATS slow or away, it is left
        to expire with its TTL rather than keep a stopping scheduler waiting."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(RELEASE_WAIT):
                await self._release()

    async def _release(self) -> None:
        kv = await self.bucket()
        entry = await kv.get(self.key)
        if entry.value == self.holder.encode():
            await kv.delete(self.key, last=entry.revision)
