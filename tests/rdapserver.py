"""A registry's RDAP server (aiohttp) on loopback for the domain-expiration table.

``/rdap/domain/NAME`` answers the records of :func:`records` (expiry relative to now),
404 for other names; ``/long/domain/NAME`` the same with 300 kB of remarks, in pieces;
``/broken/domain/NAME`` answers a page that is not JSON; ``/odd/CASE/domain/NAME`` the JSON
of :data:`ODD` (``CASE``), ``/huge/domain/NAME`` a record past the agent's 1 MiB,
``/loop/domain/NAME`` a redirect to itself; ``/odd-bootstrap/dns.json`` a bootstrap file
whose services are not pairs;
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


def _with(**changes: Any) -> dict[str, Any]:
    return record("example.test", 300) | changes


def _registrar(**changes: Any) -> dict[str, Any]:
    return _with(entities=[{"objectClassName": "entity", "roles": ["registrar"]} | changes])


#: Answers that are JSON but no RDAP domain record, by case.
ODD: dict[str, Any] = {
    "a-list": [],
    "events-null": _with(events=None),
    "event-action-a-list": _with(
        events=[{"eventAction": ["expiration"], "eventDate": "2031-01-01T00:00:00Z"}]
    ),
    "entity-a-string": _with(entities=["x"]),
    "roles-null": _registrar(roles=None),
    "vcard-fn-alone": _registrar(vcardArray=["vcard", [["fn"]]]),
    "status-a-number": _with(status=1),
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
                web.get("/odd/{case}/domain/{name}", self._odd),
                web.get("/huge/domain/{name}", self._huge),
                web.get("/loop/domain/{name}", self._loop),
                web.get("/odd-bootstrap/dns.json", self._odd_bootstrap),
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

    async def _odd(self, request: web.Request) -> web.Response:
        return web.json_response(ODD[request.match_info["case"]])

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        huge = record(name, DOMAINS[name]) | {"remarks": [{"description": ["x" * 1_100_000]}]}
        return await paced(request, json.dumps(huge).encode(), "application/rdap+json")

    async def _loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.path)

    async def _odd_bootstrap(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "1.0", "services": [[["test"]]]})

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
