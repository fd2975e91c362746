"""Reconnect pacing for NATS clients: exponential backoff with jitter, forever.

nats-py retries each server at a fixed interval; after an outage every agent
of a fleet would then knock at the same instants. Its
``reconnect_to_server_handler`` hook lets us choose the server (the one tried
least) and the pause (doubling per failed attempt, capped, randomised).
"""

from __future__ import annotations

import random
from typing import Any


def delay(attempts: int, base: float = 0.25, cap: float = 10.0) -> float:
    """Pause before the next attempt after ``attempts`` failed ones: up to ``cap`` seconds,
    drawn in [50%, 100%] of the exponential value so clients spread out."""
    ceiling = min(cap, base * (2 ** min(attempts, 16)))
    return ceiling * random.uniform(0.5, 1.0)  # pacing, not cryptography


def handler(servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
    # Least-failed first; ties broken at random so a fleet spreads over the cluster's servers.
    server = min(servers, key=lambda s: (s.reconnects, random.random()))
    return server, delay(server.reconnects)
