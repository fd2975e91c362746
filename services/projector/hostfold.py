"""Host observations into the ``hosts`` (latest figures) and ``host_samples`` (history) read
models: the rows, pure; then written with the batch, in the projector's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from events.types import HostObserved

HOST_COLUMNS = [
    "agent",
    "location",
    "hostname",
    "seq",
    "seen_at",
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


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def host_row(seq: int, ev: HostObserved) -> tuple[Any, ...]:
    return (
        ev.agent,
        ev.location,
        ev.hostname,
        seq,
        _ts(ev.at),
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
        _ts(ev.boot_time),
        msgspec.json.encode(ev.filesystems).decode(),
    )


def sample_row(seq: int, ev: HostObserved) -> tuple[Any, ...]:
    worst = max((fs.used_percent for fs in ev.filesystems), default=None)
    return (
        seq,
        ev.agent,
        _ts(ev.at),
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
WHERE hosts.seq < EXCLUDED.seq
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
