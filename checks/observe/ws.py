"""``ws://`` and ``wss://``: a WebSocket handshake, then the messages the checks ask for.

Each ``websocket-reply`` check of the group sends its text once; the first
message that comes back is its reply. A failed handshake fails the group.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import aiohttp

from checks.base import Response
from checks.observe.common import (
    Answer,
    ProbeContext,
    ProbeError,
    certificate_facts,
    failed,
    not_after,
    other_family,
)
from events.types import CheckRequested, Observation

REPLY_KIND = "websocket-reply"
MAX_MESSAGE = 64 * 1024


async def _exchange(
    ws: aiohttp.ClientWebSocketResponse, sends: list[str], timeout: float
) -> dict[str, str | None]:
    """Each text sent, and the next message read back (``None``: closed or silent)."""
    replies: dict[str, str | None] = {}
    for text in sends:
        try:
            await ws.send_str(text)
            message = await ws.receive(timeout=timeout)
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


async def observe(req: CheckRequested, url: str, ctx: ProbeContext) -> Answer:
    start = time.perf_counter()
    sends = sorted({spec.expected["send"] for spec in req.checks if spec.kind == REPLY_KIND})
    facts: dict[str, Any] = {}
    if (wrong := other_family(url, req.ip_version)) is not None:
        return failed(wrong, start, req.timeout)
    try:
        async with asyncio.timeout(req.timeout):
            # The session's connector holds the trust store (``ssl_context``): given here
            # again, aiohttp would quote the context's repr in its errors.
            ws = await ctx.session.ws_connect(url, max_msg_size=MAX_MESSAGE)
    except aiohttp.WSServerHandshakeError as exc:
        refused = ProbeError("websocket", f"handshake refused: HTTP {exc.status} {exc.message}")
        return failed(refused, start, req.timeout)
    except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as exc:
        return failed(ctx.lookups.blame(exc, url, req.timeout), start, req.timeout)
    elapsed = (time.perf_counter() - start) * 1000
    async with ws:
        peer = ws.get_extra_info("peername")
        if peer:
            facts["address"] = peer[0]
        if ws.protocol:
            facts["protocol"] = ws.protocol
        sslobj = ws.get_extra_info("ssl_object")
        expiry = not_after(sslobj.getpeercert()) if sslobj is not None else None
        facts.update(certificate_facts(sslobj))
        if sends:
            facts["replies"] = await _exchange(ws, sends, req.timeout)
    return (
        Observation(elapsed_ms=round(elapsed, 2), cert_not_after=expiry, facts=facts),
        Response(101, elapsed_ms=elapsed, cert_not_after=expiry, url=url, facts=facts),
    )
