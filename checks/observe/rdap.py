"""``rdap://example.org?server=URL``: the domain's registration record, over RDAP (RFC 9083).

``server`` is the registry's RDAP base URL (``https://rdap.example/``); without
it the agent looks the top-level domain up in IANA's bootstrap file (RFC 9224),
kept for a day. Agents that cannot reach IANA need ``server``. The record's
expiration event is the value ``domain-expiration`` grades.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from checks.base import Response
from checks.observe.common import Answer, ProbeContext, ProbeError, failed, read_body
from events.types import CheckRequested, Observation

BOOTSTRAP = "https://data.iana.org/rdap/dns.json"
BOOTSTRAP_TTL = 86400.0
MAX_RECORD = 1024 * 1024
_bootstrap: dict[str, Any] = {}


async def _get_json(session: aiohttp.ClientSession, url: str, timeout: float) -> Any:
    headers = {"Accept": "application/rdap+json, application/json"}
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
        body = await read_body(r.content, MAX_RECORD)
        if r.status == 404:
            raise ProbeError("rdap", f"{url}: not found (404): the registry has no such domain")
        if r.status != 200:
            raise ProbeError("rdap", f"{url}: HTTP {r.status}")
    try:
        return json.loads(body)
    except ValueError:
        raise ProbeError("rdap", f"{url}: the answer is not JSON") from None


async def server_for(domain: str, session: aiohttp.ClientSession, timeout: float) -> str:
    """The RDAP base URL of the domain's TLD, from IANA's bootstrap file."""
    if time.monotonic() - _bootstrap.get("at", -BOOTSTRAP_TTL) >= BOOTSTRAP_TTL:
        data = await _get_json(session, BOOTSTRAP, timeout)
        _bootstrap.update(at=time.monotonic(), services=data.get("services", []))
    labels = domain.lower().rstrip(".").split(".")
    # The longest registered suffix wins (``co.uk`` before ``uk``), as RFC 9224 says.
    for size in range(len(labels), 0, -1):
        suffix = ".".join(labels[-size:])
        for entries, urls in _bootstrap["services"]:
            if suffix in entries and urls:
                https = [u for u in urls if u.startswith("https:")]
                return str((https or urls)[0])
    raise ProbeError("rdap", f"IANA's bootstrap names no RDAP server for {domain}")


def _date(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _registrar(record: dict[str, Any]) -> str | None:
    for entity in record.get("entities", []):
        if "registrar" in entity.get("roles", []):
            for item in (entity.get("vcardArray") or [None, []])[1]:
                if item and item[0] == "fn":
                    return str(item[3])
            return str(entity.get("handle")) if entity.get("handle") else None
    return None


def facts_of(record: Any, server: str) -> dict[str, Any]:
    """What an operator wants to see of a domain's record; ``expires`` in Unix seconds."""
    if not isinstance(record, dict):
        raise ProbeError("rdap", f"{server}: not an RDAP domain record")
    events = {
        e.get("eventAction"): e.get("eventDate")
        for e in record.get("events", [])
        if isinstance(e, dict)
    }
    facts: dict[str, Any] = {"server": server, "status": record.get("status", [])}
    if (registrar := _registrar(record)) is not None:
        facts["registrar"] = registrar
    for action, key in (("registration", "registered"), ("expiration", "expires_on")):
        if events.get(action):
            facts[key] = events[action]
    expires = _date(events.get("expiration"))
    if expires is not None:
        facts["expires"] = expires
        facts["days_left"] = round((expires - time.time()) / 86400, 1)
    return facts


async def observe(req: CheckRequested, url: str, ctx: ProbeContext) -> Answer:
    parts = urlsplit(url)
    domain = parts.hostname or ""
    start = time.perf_counter()
    server = dict(parse_qsl(parts.query)).get("server")
    asking = server or BOOTSTRAP  # what a timeout's name lookup would be of
    try:
        async with asyncio.timeout(req.timeout):
            server = server or await server_for(domain, ctx.session, req.timeout)
            asking = server.rstrip("/") + "/domain/" + domain
            facts = facts_of(await _get_json(ctx.session, asking, req.timeout), asking)
    except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError, ProbeError) as exc:
        return failed(ctx.lookups.blame(exc, asking, req.timeout), start, req.timeout)
    elapsed = (time.perf_counter() - start) * 1000
    return (
        Observation(elapsed_ms=round(elapsed, 2), facts=facts),
        Response(200, elapsed_ms=elapsed, url=url, facts=facts),
    )
