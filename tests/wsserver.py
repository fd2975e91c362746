"""A WebSocket server (aiohttp) on loopback, over ws:// and wss://, for the WebSocket table.

Routes: ``/echo`` answers ``pong: TEXT``, ``/silent`` never answers, ``/close`` closes
at once, ``/page`` is a plain page (no WebSocket: the handshake is refused).
"""

from __future__ import annotations

import asyncio
import ssl
import threading

from aiohttp import WSMsgType, web

from runtime.embedded import free_port


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


class WSServer:
    """``ws://127.0.0.1:port`` and ``wss://127.0.0.1:tls_port``, in a thread of its own."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.tls = tls
        self.port, self.tls_port = free_port(), free_port()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.add_routes(
            [
                web.get("/echo", _echo),
                web.get("/silent", _silent),
                web.get("/close", _close),
                web.get("/page", _page),
            ]
        )
        self._runner = web.AppRunner(app)

        async def start() -> None:
            assert self._runner is not None
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            await web.TCPSite(
                self._runner, "127.0.0.1", self.tls_port, ssl_context=self.tls
            ).start()
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def __enter__(self) -> WSServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
