"""An aiohttp application on loopback in a thread of its own: module-scoped fixtures and the
check tables need a server whose event loop is not the test's."""

from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Self

from aiohttp import web


class AppThread:
    """Serves ``routes`` on ``http://127.0.0.1:port`` (and, given ``tls``, on ``tls_port``
    over TLS); a context manager."""

    def __init__(self, routes: list[web.RouteDef], tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.tls = tls
        # Ports the kernel gives at bind time (known once entered): a port picked free and
        # bound later may be taken in between by another process of a busy machine.
        self.port = 0
        self.tls_port = 0
        self.url = ""
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.add_routes(self.routes)
        self._runner = web.AppRunner(app, access_log=None)

        async def start() -> None:
            assert self._runner is not None
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            self.port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{self.port}"
            if self.tls is not None:
                await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls).start()
                self.tls_port = self._runner.addresses[1][1]

        try:
            self.loop.run_until_complete(start())
        except BaseException as exc:
            self._failed = exc
            return
        finally:
            self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the test server did not start within 60 s")
        if self._failed is not None:
            raise RuntimeError("the test server could not start") from self._failed
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
