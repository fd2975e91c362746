"""The web's one connection to NATS, and how its routes write to the log through it: every
route that publishes (check now, acknowledgements, incidents, subscriptions, pings) or
follows a run gets the connection here, within :data:`WAIT`, or a 503 saying what failed.

Before, each route had its own way: check now waited up to 10 s for a connection behind a
lock held as long by the configuration poll (16 s, then "NATS unreachable: " with the empty
text of a TimeoutError); the status pages waited for ever; acknowledgements and metrics
replaced the shared connection with one that stops reconnecting (and, for
acknowledgements, without the service's credentials); and a connection that lost its server
was handed out as it was, so a write waited in its buffer and went out when NATS came back,
after the caller had been told it failed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import HTTPException
from nats.aio.client import Client

from runtime import bus

#: The longest a request waits for NATS: for the connection, then for the log's
#: acknowledgement of a write. A press while NATS is away is answered within it.
WAIT = 2.0
UNREACHABLE = "the event log (NATS) is unreachable"
#: Why a write was not acknowledged (it may still have reached the log).
UNACKNOWLEDGED = "the event log (NATS) did not acknowledge the write"


def why(exc: BaseException) -> str:
    """What failed, never empty (a timeout's own text is). nats-py's timeouts are
    TimeoutErrors too."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {WAIT:g}s"
    return str(exc) or type(exc).__name__


async def connection(state: Any, url: str) -> Client:
    """The web's one NATS connection (``state.nats``), opened at its first use. Once open it
    is kept: it reconnects by itself (``bus.connect``), and one opened beside it would leave
    the first reconnecting for ever, its buffer with it."""
    async with state.nats_lock:
        if state.nats is None or state.nats.is_closed:
            state.nats = await bus.connect(url, "web")
    return state.nats  # type: ignore[no-any-return]


async def connected(state: Any, url: str) -> Client:
    """The connection, connected now, within :data:`WAIT`; a 503 saying why otherwise. A
    connection that lost its server is refused rather than written to: what it buffers goes
    out when NATS is back, after the caller was told it failed."""
    try:
        nc = await asyncio.wait_for(connection(state, url), WAIT)
    except Exception as exc:
        raise HTTPException(503, f"{UNREACHABLE}: {why(exc)}") from None
    if not nc.is_connected:
        raise HTTPException(503, f"{UNREACHABLE}: connection lost, reconnecting")
    return nc


async def publish(state: Any, url: str, subject: str, data: bytes, msg_id: str) -> None:
    """``data`` in the log, acknowledged within :data:`WAIT`; a 503 saying why otherwise."""
    nc = await connected(state, url)
    try:
        await nc.jetstream().publish(subject, data, headers={"Nats-Msg-Id": msg_id}, timeout=WAIT)
    except Exception as exc:
        raise HTTPException(503, f"{UNACKNOWLEDGED}: {why(exc)}") from None
