"""An aiohttp application on loopback in a thread of its own: module-scoped fixtures and the
check tables need a server whose event loop is not the test's."""

from __future__ import annotations

import asyncio
import ssl
import threading
from abc import ABC, abstractmethod
from typing import Self

from aiohttp import web


class LoopThread(ABC):
    """A server that ``serve()`` starts on an event loop in a thread of its own; a context
    manager that raises when the server cannot start, instead of going on without it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @abstractmethod
    async def serve(self) -> None:
        """Start serving (on the thread's loop); what it sets, the caller reads once entered."""

    @abstractmethod
    async def close(self) -> None:
        """Stop serving (on the thread's loop)."""

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.serve())
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
        if self._failed is None:
            asyncio.run_coroutine_threadsafe(self.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class AppThread(LoopThread):
    """Serves ``routes`` on ``http://127.0.0.1:port`` (and, given ``tls``, on ``tls_port``
    over TLS); a context manager."""

    def __init__(self, routes: list[web.RouteDef], tls: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.routes = routes
        self.tls = tls
        # Ports the kernel gives at bind time (known once entered): a port picked free and
        # bound later may be taken in between by another process of a busy machine.
        self.port = 0
        self.tls_port = 0
        self.url = ""
        app = web.Application()
        app.add_routes(self.routes)
        self._runner = web.AppRunner(app, access_log=None)

    async def serve(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self.port}"
        if self.tls is not None:
            await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls).start()
            self.tls_port = self._runner.addresses[1][1]

    async def close(self) -> None:
        await self._runner.cleanup()
