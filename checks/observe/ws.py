"""``ws://`` and ``wss://``: a WebSocket handshake, then the messages the checks ask for.

Each ``websocket-reply`` check of the group sends its text once; the first
message that comes back is its reply. A failed handshake fails the group. The
handshake, the messages and the close share the check's timeout (:class:`Budget`).
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import aiohttp

from checks.base import Response
from checks.observe.common import (
    Answer,
    Budget,
    ProbeContext,
    ProbeError,
    certificate_facts,
    not_after,
    other_family,
)
from events.types import CheckRequested, Observation

REPLY_KIND = "websocket-reply"
MAX_MESSAGE = 64 * 1024


async def _exchange(
    ws: aiohttp.ClientWebSocketResponse, sends: list[str], budget: Budget
) -> dict[str, str | None]:
    """Each text sent, and the next message read back (``None``: closed or silent until the
    deadline); the texts after it are not sent."""
    replies: dict[str, str | None] = {}
    for text in sends:
        try:
            async with budget.bound():
                await ws.send_str(text)
                message = await ws.receive()
        except (TimeoutError, aiohttp.ClientError, OSError):
            replies[text] = None
            break
        if message.type == aiohttp.WSMsgType.TEXT:
            replies[text] = message.data[:MAX_MESSAGE]
        elif message.type == aiohttp.WSMsgType.BINARY:
            replies[text] = message.data[:MAX_MESSAGE].decode("utf-8", errors="replace")
        else:
            replies[text] = None
            break
    return replies


async def _close(ws: aiohttp.ClientWebSocketResponse, budget: Budget) -> None:
    """The closing handshake, for a server that answers it; one that does not (aiohttp would
    wait 10 s) is cut off at the close's bound, which fails nothing: the replies are in."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
        async with budget.closing():
            await ws.close()  # cancelled, it drops the connection


async def observe(req: CheckRequested, url: str, ctx: ProbeContext) -> Answer:
    budget = Budget(req.timeout)
    sends = sorted({spec.expected["send"] for spec in req.checks if spec.kind == REPLY_KIND})
    facts: dict[str, Any] = {}
    if (wrong := other_family(url, req.ip_version)) is not None:
        return budget.failed(wrong)
    try:
        async with budget.bound():
            # The session's connector holds the trust store (``ssl_context``): given here
            # again, aiohttp would quote the context's repr in its errors.
            ws = await ctx.session.ws_connect(url, max_msg_size=MAX_MESSAGE)
    except aiohttp.WSServerHandshakeError as exc:
        refused = ProbeError("websocket", f"handshake refused: HTTP {exc.status} {exc.message}")
        return budget.failed(refused)
    except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as exc:
        return budget.failed(ctx.lookups.blame(exc, url, req.timeout))
    elapsed = budget.ms()
    try:
        peer = ws.get_extra_info("peername")
        if peer:
            facts["address"] = peer[0]
        if ws.protocol:
            facts["protocol"] = ws.protocol
        sslobj = ws.get_extra_info("ssl_object")
        expiry = not_after(sslobj.getpeercert()) if sslobj is not None else None
        facts.update(certificate_facts(sslobj))
        if sends:
            facts["replies"] = await _exchange(ws, sends, budget)
    finally:
        await _close(ws, budget)
    return (
        Observation(elapsed_ms=round(elapsed, 2), cert_not_after=expiry, facts=facts),
        Response(101, elapsed_ms=elapsed, cert_not_after=expiry, url=url, facts=facts),
    )
