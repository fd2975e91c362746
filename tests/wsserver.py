"""A WebSocket server (aiohttp) on loopback, over ws:// and wss://, for the WebSocket table.

Routes: ``/echo`` answers ``pong: TEXT``, ``/silent`` never answers, ``/close`` closes
at once, ``/page`` is a plain page (no WebSocket: the handshake is refused).
"""

from __future__ import annotations

import ssl

from aiohttp import WSMsgType, web

from tests.appthread import AppThread


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(f"pong: {message.data}")
    return ws


async def _silent(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for _ in ws:
        pass
    return ws


async def _close(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close()
    return ws


async def _page(request: web.Request) -> web.Response:
    return web.Response(text="not a websocket")


class WSServer(AppThread):
    """``ws://127.0.0.1:port`` and ``wss://127.0.0.1:tls_port``, in a thread of its own."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        routes = [
            web.get("/echo", _echo),
            web.get("/silent", _silent),
            web.get("/close", _close),
            web.get("/page", _page),
        ]
        super().__init__(routes, tls)
