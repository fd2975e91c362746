"""A registry's RDAP server (aiohttp) on loopback for the domain-expiration table.

``/rdap/domain/NAME`` answers the records of :func:`records` (expiry relative to now),
404 for other names; ``/long/domain/NAME`` the same with 300 kB of remarks, in pieces;
``/broken/domain/NAME`` answers a page that is not JSON;
``/bootstrap/dns.json`` is an IANA-style bootstrap file pointing ``test`` at ``/rdap/``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.appthread import AppThread
from tests.streamsite import paced

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


class RDAPServer(AppThread):
    """``http://127.0.0.1:port``; a context manager, in a thread of its own."""

    def __init__(self) -> None:
        super().__init__(
            [
                web.get("/rdap/domain/{name}", self._domain),
                web.get("/broken/domain/{name}", self._broken),
                web.get("/long/domain/{name}", self._long),
                web.get("/bootstrap/dns.json", self._bootstrap),
            ]
        )

    async def _domain(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in DOMAINS:
            return web.json_response({"errorCode": 404, "title": "Not Found"}, status=404)
        return web.json_response(record(name, DOMAINS[name]), content_type="application/rdap+json")

    async def _long(self, request: web.Request) -> web.StreamResponse:
        """A record with 300 kB of remarks, sent in pieces (as a registry's may be)."""
        name = request.match_info["name"]
        long = record(name, DOMAINS[name]) | {"remarks": [{"description": ["x" * 300_000]}]}
        return await paced(request, json.dumps(long).encode(), "application/rdap+json")

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
