"""Host observations into the ``hosts`` (latest figures) and ``host_samples`` (history) read
models: the rows, pure; then written with the batch, in the projector's transaction. The latest
figures are the latest taken (``liveness``), whatever order the log received them in."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from events.types import HostObserved
from services.projector.liveness import ts

HOST_COLUMNS = [
    "agent",
    "location",
    "hostname",
    "seq",
    "seen_at",
    "received_at",
    "interval_s",
    "cores",
    "cpu_percent",
    "load1",
    "load5",
    "load15",
    "memory_total",
    "memory_available",
    "memory_percent",
    "swap_total",
    "swap_free",
    "swap_percent",
    "boot_time",
    "filesystems",
]
SAMPLE_COLUMNS = [
    "seq",
    "agent",
    "at",
    "cpu_percent",
    "load1",
    "memory_percent",
    "swap_percent",
    "disk_percent",
]


#: The places of ``seen_at`` and ``received_at`` in a host's row.
HOST_TIMES = (4, 5)


def host_row(seq: int, ev: HostObserved, received: float) -> tuple[Any, ...]:
    return (
        ev.agent,
        ev.location,
        ev.hostname,
        seq,
        ts(ev.at),
        ts(received),
        ev.interval,
        ev.cores,
        ev.cpu_percent,
        ev.load1,
        ev.load5,
        ev.load15,
        ev.memory_total_bytes,
        ev.memory_available_bytes,
        ev.memory_percent,
        ev.swap_total_bytes,
        ev.swap_free_bytes,
        ev.swap_percent,
        ts(ev.boot_time),
        msgspec.json.encode(ev.filesystems).decode(),
    )


def sample_row(seq: int, ev: HostObserved, taken: float) -> tuple[Any, ...]:
    """A point of the host's graphs, when it was taken (``Heard.taken``: an hour-fast clock's
    is not ahead)."""
    worst = max((fs.used_percent for fs in ev.filesystems), default=None)
    return (
        seq,
        ev.agent,
        ts(taken),
        ev.cpu_percent,
        ev.load1,
        ev.memory_percent,
        ev.swap_percent,
        worst,
    )


_UPSERT = f"""
INSERT INTO hosts ({", ".join(HOST_COLUMNS)})
VALUES ({", ".join(f"${i}" for i in range(1, len(HOST_COLUMNS)))}, ${len(HOST_COLUMNS)}::jsonb)
ON CONFLICT (agent) DO UPDATE SET
  {", ".join(f"{c} = EXCLUDED.{c}" for c in HOST_COLUMNS[1:])}
WHERE (least(hosts.seen_at, hosts.received_at), hosts.seq)
    < (least(EXCLUDED.seen_at, EXCLUDED.received_at), EXCLUDED.seq)
"""


async def write(
    conn: asyncpg.Connection,
    hosts: dict[str, tuple[Any, ...]],
    samples: list[tuple[Any, ...]],
    schema: str,
) -> None:
    if hosts:
        await conn.executemany(_UPSERT, list(hosts.values()))
    if samples:
        await conn.copy_records_to_table(
            "host_samples", records=samples, columns=SAMPLE_COLUMNS, schema_name=schema
        )
