"""A registry's RDAP server (aiohttp) on loopback for the domain-expiration table.

``/rdap/domain/NAME`` answers the records of :func:`records` (expiry relative to now),
404 for other names; ``/broken/domain/NAME`` answers a page that is not JSON;
``/bootstrap/dns.json`` is an IANA-style bootstrap file pointing ``test`` at ``/rdap/``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from runtime.embedded import free_port

#: Days left before each test domain expires (``None``: the record has no expiration).
DOMAINS: dict[str, float | None] = {
    "example.test": 300,
    "soon.test": 20,
    "urgent.test": 3,
    "gone.test": -2,
    "noexpiry.test": None,
}


def _iso(days: float) -> str:
    return datetime.fromtimestamp(time.time() + days * 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(name: str, days: float | None) -> dict[str, Any]:
    events = [{"eventAction": "registration", "eventDate": "2001-02-03T04:05:06Z"}]
    if days is not None:
        events.append({"eventAction": "expiration", "eventDate": _iso(days)})
    return {
        "objectClassName": "domain",
        "ldhName": name,
        "status": ["active", "client transfer prohibited"],
        "events": events,
        "entities": [
            {
                "objectClassName": "entity",
                "roles": ["registrar"],
                "vcardArray": [
                    "vcard",
                    [["version", {}, "text", "4.0"], ["fn", {}, "text", "Test Registrar SA"]],
                ],
            }
        ],
    }


class RDAPServer:
    """``http://127.0.0.1:port``; a context manager, in a thread of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _domain(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in DOMAINS:
            return web.json_response({"errorCode": 404, "title": "Not Found"}, status=404)
        return web.json_response(record(name, DOMAINS[name]), content_type="application/rdap+json")

    async def _broken(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    async def _bootstrap(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "version": "1.0",
                "services": [
                    [["test"], [f"{self.url}/rdap/"]],
                    [["org"], ["https://rdap.org.invalid/"]],
                ],
            }
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.add_routes(
            [
                web.get("/rdap/domain/{name}", self._domain),
                web.get("/broken/domain/{name}", self._broken),
                web.get("/bootstrap/dns.json", self._bootstrap),
            ]
        )
        self._runner = web.AppRunner(app)

        async def start() -> None:
            assert self._runner is not None
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def __enter__(self) -> RDAPServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
