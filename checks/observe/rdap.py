"""``rdap://example.org?server=URL``: the domain's registration record, over RDAP (RFC 9083).

``server`` is the registry's RDAP base URL (``https://rdap.example/``); without
it the agent looks the top-level domain up in IANA's bootstrap file (RFC 9224),
kept for a day. Agents that cannot reach IANA need ``server``. The bootstrap file
and the record share the check's timeout. The record's expiration event is the value
``domain-expiration`` grades.
"""

from __future__ import annotations

import ssl
import time
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import msgspec

from checks.base import Response
from checks.observe.common import (
    Answer,
    Budget,
    ProbeContext,
    ProbeError,
    other_family,
    read_body,
)
from events.types import CheckRequested, Observation

BOOTSTRAP = "https://data.iana.org/rdap/dns.json"
BOOTSTRAP_TTL = 86400.0
MAX_RECORD = 1024 * 1024
_bootstrap: dict[str, Any] = {}
_T = TypeVar("_T")

# What of a record the agent reads, typed: a registry's answer is not to be trusted, and a field
# of the wrong type is said as such ("Expected `array`, got `null` - at `$.events`"). Fields
# not named here are ignored; absent ones are empty.


class _Bootstrap(msgspec.Struct):
    """IANA's bootstrap file (RFC 9224): ``[[suffixes], [base URLs]]`` per service."""

    services: list[tuple[list[str], list[str]]]


class _Event(msgspec.Struct):
    eventAction: str
    eventDate: str | None = None


#: A jCard property (RFC 7095): name, parameters, value type, then its value(s).
_Property = Annotated[list[Any], msgspec.Meta(min_length=4)]


class _Entity(msgspec.Struct):
    roles: list[str] = []
    handle: str | None = None
    vcardArray: tuple[str, list[_Property]] | None = None


class _Domain(msgspec.Struct):
    status: list[str] = []
    events: list[_Event] = []
    entities: list[_Entity] = []


async def _get(ctx: ProbeContext, url: str, kind: type[_T], what: str, version: int) -> _T:
    """The answer at ``url``, read as ``kind``; ``what`` names it in the error. No timer of
    its own: the caller's deadline bounds the bootstrap file and the record together."""
    if (wrong := other_family(url, version)) is not None:
        raise wrong
    headers = {"Accept": "application/rdap+json, application/json"}
    async with ctx.session.get(url, headers=headers) as r:
        body, cut = await read_body(r.content, MAX_RECORD)
        if r.status == 404:
            raise ProbeError("rdap", f"{url}: not found (404): the registry has no such domain")
        if r.status != 200:
            raise ProbeError("rdap", f"{url}: HTTP {r.status}")
    if cut:
        raise ProbeError("rdap", f"{url}: the answer is longer than {MAX_RECORD // 1048576} MiB")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise ProbeError("rdap", f"{url}: not {what} ({exc})") from None
    except msgspec.DecodeError:
        raise ProbeError("rdap", f"{url}: the answer is not JSON") from None


async def server_for(domain: str, ctx: ProbeContext, version: int) -> str:
    """The RDAP base URL of the domain's TLD, from IANA's bootstrap file."""
    if time.monotonic() - _bootstrap.get("at", -BOOTSTRAP_TTL) >= BOOTSTRAP_TTL:
        data = await _get(ctx, BOOTSTRAP, _Bootstrap, "an RDAP bootstrap file", version)
        _bootstrap.update(at=time.monotonic(), services=data.services)
    labels = domain.lower().rstrip(".").split(".")
    # The longest registered suffix wins (``co.uk`` before ``uk``), as RFC 9224 says.
    for size in range(len(labels), 0, -1):
        suffix = ".".join(labels[-size:])
        for entries, urls in _bootstrap["services"]:
            if suffix in entries and urls:
                https = [u for u in urls if u.startswith("https:")]
                return (https or urls)[0]
    raise ProbeError("rdap", f"IANA's bootstrap names no RDAP server for {domain}")


def _date(value: str | None) -> float | None:
    try:
        return datetime.fromisoformat((value or "").replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):  # not a date, or one no clock can hold
        return None


def _registrar(record: _Domain) -> str | None:
    for entity in record.entities:
        if "registrar" in entity.roles:
            for item in entity.vcardArray[1] if entity.vcardArray else []:
                if item[0] == "fn":
                    return str(item[3])
            return entity.handle or None
    return None


def facts_of(record: _Domain, server: str) -> dict[str, Any]:
    """What an operator wants to see of a domain's record; ``expires`` in Unix seconds."""
    events = {e.eventAction: e.eventDate for e in record.events}
    facts: dict[str, Any] = {"server": server, "status": record.status}
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
    budget = Budget(req.timeout)
    server = dict(parse_qsl(parts.query)).get("server")
    asking = server or BOOTSTRAP  # what a timeout's name lookup would be of
    try:
        async with budget.bound():
            server = server or await server_for(domain, ctx, req.ip_version)
            asking = server.rstrip("/") + "/domain/" + domain
            record = await _get(ctx, asking, _Domain, "an RDAP domain record", req.ip_version)
            facts = facts_of(record, asking)
    except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError, ProbeError) as exc:
        return budget.failed(ctx.lookups.blame(exc, asking, req.timeout))
    elapsed = budget.ms()
    return (
        Observation(elapsed_ms=round(elapsed, 2), facts=facts),
        Response(200, elapsed_ms=elapsed, url=url, facts=facts),
    )
