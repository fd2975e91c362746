"""``tocsin shards``: which scheduler replica holds which shard, read from the lease bucket.

Each replica keeps a membership key saying where it runs (host and pid) and writes its id
into the lease of every shard it holds; an unsharded scheduler holds the one lease
``scheduler``. What expired (a replica killed, a shard not yet taken) is not listed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from nats.js.errors import BucketNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from runtime import bus
from services.scheduler import layout, leader
from services.scheduler.shards import MEMBERS, shard_key


async def _value(kv: KeyValue, key: str) -> str | None:
    with contextlib.suppress(NotFoundError):
        entry = await kv.get(key)
        return (entry.value or b"").decode(errors="replace")
    return None


async def holdings(url: str) -> list[str]:
    """The lines ``tocsin shards`` prints."""
    async with bus.oneshot(url, "shards") as nc:
        try:
            kv = await nc.jetstream().key_value(leader.BUCKET)
        except BucketNotFoundError:
            return ["no scheduler has run on this NATS"]
        try:
            keys = await kv.keys()
        except NoKeysError:
            keys = []
        replicas = {
            k.removeprefix(MEMBERS): await _value(kv, k) for k in keys if k.startswith(MEMBERS)
        }
        said = await _value(kv, layout.KEY)  # every scheduler running says it
        if said is None:
            return ["no scheduler running"]
        shards = int(said)
        if shards == 1:
            holder = await _value(kv, leader.KEY)
            return [f"unsharded: the lease is {'held' if holder else 'free'}"]
        lines = [f"{shards} shards, {len(replicas)} replica(s) alive"]
        lines += [f"replica {rid[:12]}  {where}" for rid, where in sorted(replicas.items())]
        for shard in range(shards):
            holder = await _value(kv, shard_key(shard))
            who = "held by none" if holder is None else f"replica {holder[:12]}"
            lines.append(f"shard {shard}  {who}")
        return lines


def run(args: argparse.Namespace) -> int:
    for line in asyncio.run(holdings(args.nats_url)):
        print(line)
    return 0
