"""Whether checks still run: a watchdog's question, answered by ``/healthz`` and ``/metrics``.

A scheduler that stopped dispatching (a hang, every replica gone) or agents all away leave
the read model as it was, every task "ok" with an old last check: the pages cannot tell. The
newest result can: with tasks for agents to run, one comes at least every run of the most
frequent of them. Silence much longer than that is "checks stale". The web vouches only for
what it watched: its own start counts as the last sign of life (the whole system started
after a downtime has no stale checks until its first runs are due).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

#: Runs of the most frequent task that may pass without any result before checks are stale.
RUNS = 3
#: Seconds of silence never called stale, however frequent the tasks: the first runs are
#: spread over a frequency, and a loaded machine answers late.
FLOOR = 60.0

# Two index lookups in one round trip: the newest result (results_seq) and the shortest
# frequency of the tasks agents run (tasks_dispatched_frequency): host figures and heartbeat
# monitors are judged without any result.
_QUERY = """
SELECT extract(epoch FROM now() - (SELECT checked_at FROM results ORDER BY seq DESC LIMIT 1))
         AS age,
       (SELECT min(frequency) FROM tasks
         WHERE removed_at IS NULL AND method <> 'HOST' AND check_kind <> 'heartbeat')
         AS shortest
"""


@dataclass(frozen=True)
class Freshness:
    #: Seconds since the newest result (None: none yet).
    age: float | None
    #: Seconds of silence past which checks are stale (None: no task for agents to run).
    stale_after: float | None
    stale: bool


def judge(age: float | None, shortest: float | None, watched: float) -> Freshness:
    """``age`` of the newest result, ``shortest`` frequency of the tasks agents run,
    ``watched``: seconds since the web started."""
    if shortest is None:
        return Freshness(age, None, False)
    limit = max(FLOOR, RUNS * shortest)
    silent = min(math.inf if age is None else age, watched)
    return Freshness(age, limit, silent > limit)


async def freshness(conn: asyncpg.Connection, state: Any) -> Freshness:
    row = await conn.fetchrow(_QUERY)
    age = None if row["age"] is None else float(row["age"])
    shortest = None if row["shortest"] is None else float(row["shortest"])
    return judge(age, shortest, time.monotonic() - state.watching_since)
