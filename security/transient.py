"""Sealing keys for locations that have none of their own, kept in memory only.

A location with a key (``locations/<loc>.pub``, ``tocsin agents add``) gets its requests'
secrets sealed to it. One without (``tocsin dev`` without ``--secure``, a deployment
without a security directory) must not get them in clear in the log either: the scheduler
seals them to a *transient* key pair kept in a KV bucket with memory storage, never written
to disk, which the location's agents read to open them. The log, its backups and its
replays then hold only ciphertext whose key is gone once NATS restarts; requests still in
the queue then can no longer be opened (their tasks are unknown until the next request,
sealed to the key the scheduler puts back).

Who can read the bucket can read those secrets while NATS runs: in a deployment without
authorization that is anyone who can reach NATS, as before; with authorization only the
scheduler may touch it (agents there use their location's own key).
"""

from __future__ import annotations

import contextlib

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

BUCKET = "tocsin_transient_keys"


async def bucket(js: JetStreamContext, create: bool) -> KeyValue | None:
    """The bucket; created (memory storage) when ``create``, else None when missing."""
    try:
        return await js.key_value(BUCKET)
    except BucketNotFoundError:
        if not create:
            return None
    return await js.create_key_value(
        KeyValueConfig(bucket=BUCKET, history=1, storage=StorageType.MEMORY)
    )


async def private_key(js: JetStreamContext, location: str, new: str | None = None) -> str | None:
    """The location's transient private key (base64); with ``new``, put there first when the
    bucket has none (the first scheduler's key wins, so all seal to the same one)."""
    kv = await bucket(js, create=new is not None)
    if kv is None:
        return None
    try:
        return (await kv.get(location)).value.decode()  # type: ignore[union-attr]
    except KeyNotFoundError:
        if new is None:
            return None
    with contextlib.suppress(KeyWrongLastSequenceError):  # another scheduler was first
        await kv.create(location, new.encode())
    return (await kv.get(location)).value.decode()  # type: ignore[union-attr]
