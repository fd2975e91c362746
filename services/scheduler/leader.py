"""One active scheduler at a time: a lease in a JetStream key-value bucket.

The holder renews the key with a compare-and-set on its revision; a standby
takes it only once it expired (the bucket's TTL). Two schedulers started at
once therefore never both dispatch, and a dead leader is replaced within a TTL.
Deterministic message ids on requests remain the second line of defence.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError, NotFoundError

from services.common.logs import Log

log = Log("tocsin.scheduler.leader")

BUCKET = "tocsin_leases"
KEY = "scheduler"


class Lease:
    def __init__(self, js: JetStreamContext, ttl: float = 10.0, replicas: int = 1) -> None:
        self.js = js
        self.ttl = ttl
        self.replicas = replicas
        self.holder = uuid.uuid4().hex
        self.held = asyncio.Event()
        self.lost = asyncio.Event()
        self._revision: int | None = None

    async def _bucket(self):  # type: ignore[no-untyped-def]
        try:
            return await self.js.key_value(BUCKET)
        except BucketNotFoundError:
            return await self.js.create_key_value(KeyValueConfig(
                bucket=BUCKET, history=1, ttl=self.ttl, storage=StorageType.FILE,
                replicas=self.replicas))

    async def acquire(self) -> None:
        """Wait until this process holds the lease."""
        kv = await self._bucket()
        while True:
            with contextlib.suppress(KeyWrongLastSequenceError, NotFoundError, Exception):
                self._revision = await kv.create(KEY, self.holder.encode())
                self.held.set()
                log.info("scheduler lease acquired", holder=self.holder)
                return
            await asyncio.sleep(self.ttl / 4)

    async def keep(self) -> None:
        """Renew until the lease is lost (another scheduler took it after we stalled)."""
        kv = await self._bucket()
        failures = 0
        while True:
            await asyncio.sleep(self.ttl / 4)
            try:
                self._revision = await kv.update(KEY, self.holder.encode(), last=self._revision)
                failures = 0
            except KeyWrongLastSequenceError:
                log.warning("scheduler lease lost to another scheduler")
                self.lost.set()
                return
            except Exception as exc:  # NATS away: keep trying until the TTL would have passed
                failures += 1
                if failures * self.ttl / 4 >= self.ttl:
                    log.warning("scheduler lease could not be renewed", error=str(exc))
                    self.lost.set()
                    return

    async def release(self) -> None:
        with contextlib.suppress(Exception):
            kv = await self._bucket()
            entry = await kv.get(KEY)
            if entry.value == self.holder.encode():
                await kv.delete(KEY, last=entry.revision)
