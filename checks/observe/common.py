"""What every observer shares: the answer type, how a failure is told, the certificate seen."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from checks.base import Response
from checks.runlog import safe_url
from events.types import Observation

Answer = tuple[Observation, Response | None]
FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}
Address = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


class ProbeError(Exception):
    """A target that answered, but not as its protocol should: ``kind`` names the step."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


#: The longest a close the peer does not answer is waited for (a WebSocket's close frame, a
#: TLS close_notify), and never past the check's deadline: the answer was judged before it.
CLOSE_WAIT = 1.0


class Budget:
    """A check's ``timeout`` as one deadline, set once at its start: each step (name lookup,
    connect, handshake, each message, the retry over TCP, the close) gets what the steps
    before it left, so that the check as a whole, not each step, ends within its timeout."""

    __slots__ = ("deadline", "loop", "start", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.start = time.perf_counter()
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + timeout

    def left(self) -> float:
        return max(0.0, self.deadline - self.loop.time())

    def bound(self) -> asyncio.Timeout:
        """``async with budget.bound():`` the block ends with TimeoutError at the deadline."""
        return asyncio.timeout_at(self.deadline)

    def closing(self) -> asyncio.Timeout:
        """The bound of a close: ``CLOSE_WAIT`` at most, and not past the deadline."""
        return asyncio.timeout_at(min(self.deadline, self.loop.time() + CLOSE_WAIT))

    def ms(self) -> float:
        """Milliseconds since the start."""
        return (time.perf_counter() - self.start) * 1000

    def failed(self, exc: BaseException) -> Answer:
        return failed(exc, self.start, self.timeout)


def lookup_timed_out(host: str, timeout: float) -> ProbeError:
    return ProbeError("dns", f"name lookup of {host} timed out after {timeout:g}s")


async def lookup(
    host: str, port: int | None, version: int, budget: Budget, kind: int = socket.SOCK_STREAM
) -> Sequence[Address]:
    """The addresses of ``host`` for the IP version, within the check's budget: the system's
    resolver has timeouts of its own (resolv.conf: 5 s per server, twice), longer than most
    checks', and a name server that does not answer must not hold a check past its timeout."""
    if (wrong := family_problem(host, version)) is not None:
        raise wrong
    family = FAMILIES[version]
    try:  # an address needs no lookup, nor a thread to make it in
        return socket.getaddrinfo(host, port, family, kind, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    try:
        async with budget.bound():
            return await budget.loop.getaddrinfo(host, port, family=family, type=kind)
    except TimeoutError:
        raise lookup_timed_out(host, budget.timeout) from None


def _name(host: str) -> str:
    return host.rstrip(".").lower()


class Lookups(AbstractResolver):
    """aiohttp's resolver, keeping which names are being looked up. aiohttp looks a name up in
    a task of its own, which every request to that host waits for and which outlives a request
    that gives up: a request whose time runs out while its host's name is still being looked up
    says so (:meth:`blame`) rather than blame the host for not answering."""

    def __init__(self) -> None:
        self.resolver = DefaultResolver()
        self.running: Counter[str] = Counter()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = _name(host)
        self.running[name] += 1
        try:
            return await self.resolver.resolve(host, port, family)
        finally:
            self.running[name] -= 1
            if not self.running[name]:
                del self.running[name]

    async def close(self) -> None:
        await self.resolver.close()

    def blame(self, exc: BaseException, url: str, timeout: float) -> BaseException:
        """What ``exc``, met by a request to ``url``, is to be told as."""
        host = URL(url).raw_host
        if isinstance(exc, TimeoutError) and host and _name(host) in self.running:
            return lookup_timed_out(host, timeout)
        return exc


@dataclass
class ProbeContext:
    """What an observer may use: the trust store, the HTTP session of the IP version and the
    names its resolver is looking up."""

    ssl_context: ssl.SSLContext
    session: aiohttp.ClientSession
    lookups: Lookups


def other_family(url: str, version: int) -> ProbeError | None:
    """Why ``url`` cannot be asked over IP ``version``: its host is an address of the other
    version. Each session's connector is of one family, and aiohttp fails such a request with
    a bare AssertionError."""
    return family_problem(_host_of(url), version)


def family_problem(host: str, version: int) -> ProbeError | None:
    """Why ``host`` cannot be reached over IP ``version``: it is an address of the other."""
    written = _address_version(host)
    if written is None or written == version:
        return None
    return ProbeError(
        "connect", f"{host} is an IPv{written} address, and this check runs over IPv{version}"
    )


def _host_of(url: str) -> str:
    """The host of ``url``, parsed once per authority (``scheme://user@host:port``, up to its
    path, query or fragment): the URLs of one host share one parse, where a parse per URL
    was 4 % of an agent's CPU (py-spy; many URLs, few hosts)."""
    start = url.find("//")
    if start == -1:
        return _host_in(url)
    end = len(url)
    for delimiter in "/?#":
        at = url.find(delimiter, start + 2, end)
        if at != -1:
            end = at
    return _host_in(url[:end])


# Both asked on every request, of the same hosts again and again.
@lru_cache(maxsize=4096)
def _host_in(url: str) -> str:
    return URL(url).raw_host or ""


@lru_cache(maxsize=4096)
def _address_version(host: str) -> int | None:
    """4 or 6 when ``host`` is an IP address, None for a name."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


async def read_body(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """The whole body, or its first ``limit`` bytes and True: there was more (one byte more
    is read to know). ``StreamReader.read(n)`` returns what is buffered (up to ``n``), often
    one network read: a long, chunked or slow page would be judged on its first piece. What
    lies past the limit is left unread, not an error."""
    pieces = []
    size = 0
    while size <= limit and not content.at_eof():
        piece = await content.read(limit + 1 - size)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    body = b"".join(pieces)
    return body[:limit], size > limit


#: An object's default repr: its address differs in every process, so a reason quoting one
#: (aiohttp's ``ssl:<ssl.SSLContext object at 0x7f…>``) would differ between agents and runs.
_ADDRESSED = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")


def reason(exc: BaseException) -> str:
    """What an exception says, or its type's name when it says nothing: asyncio raises a bare
    ConnectionResetError() when a server hangs up during a TLS handshake."""
    return _ADDRESSED.sub(r"<\1>", str(exc)) or type(exc).__name__


def named(exc: BaseException) -> str:
    """``Type: text``, or ``Type`` alone: for exceptions whose type is half the story."""
    return f"{type(exc).__name__}: {reason(exc)}" if str(exc) else type(exc).__name__


def failed(exc: BaseException, start: float, timeout: float) -> Answer:
    elapsed = (time.perf_counter() - start) * 1000
    kind, message = describe(exc, timeout)
    return Observation(elapsed_ms=round(elapsed, 2), error=message, error_kind=kind), None


def describe(exc: BaseException, timeout: float) -> tuple[str, str]:
    if isinstance(exc, ProbeError):
        return exc.kind, reason(exc)
    if isinstance(exc, TimeoutError):
        return "timeout", f"no answer within {timeout:g}s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "tls", reason(exc.certificate_error)
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "tls", reason(exc)
    if isinstance(exc, aiohttp.ClientConnectorDNSError | socket.gaierror):
        return "dns", reason(exc)
    if isinstance(exc, aiohttp.TooManyRedirects):
        last = safe_url(str(exc.request_info.real_url))  # no credentials, no query
        return "http", f"too many redirects ({len(exc.history)}), the last to {last}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect", reason(exc.os_error) if exc.os_error else reason(exc)
    if isinstance(exc, OSError):
        return "connect", reason(exc)
    return "http", reason(exc)


def not_after(cert: Any) -> float | None:
    if not cert or "notAfter" not in cert:
        return None
    return float(ssl.cert_time_to_seconds(cert["notAfter"]))


def certificate_facts(sslobj: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, Any]:
    """The verified peer certificate in words: subject, issuer, names, validity, TLS version.

    Only the leaf: the verified chain has no public accessor before Python 3.13.
    """
    if sslobj is None:
        return {}
    cert = sslobj.getpeercert() or {}

    def name(rdns: Any) -> str:
        return ", ".join(f"{k}={v}" for rdn in rdns or () for k, v in rdn)

    expiry = not_after(cert)
    facts: dict[str, Any] = {
        "tls_version": sslobj.version(),
        "subject": name(cert.get("subject")),
        "issuer": name(cert.get("issuer")),
        "names": [pair[1] for pair in cert.get("subjectAltName", ())],
    }
    if expiry is not None:
        facts["not_after"] = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        facts["days_left"] = round((expiry - time.time()) / 86400, 1)
    return {"certificate": facts}


MAX_FACT_TEXT = 4096
MAX_FACT_ITEMS = 100


def clean(value: Any, depth: int = 0) -> Any:
    """Facts as the log admits them: no NUL character (PostgreSQL refuses it), texts and lists
    cut short, no deep nesting, only JSON types. A server's answer is not to be trusted."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")[:MAX_FACT_TEXT]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if depth >= 4:
        return None
    if isinstance(value, dict):
        items = list(value.items())[:MAX_FACT_ITEMS]
        return {clean(str(k)): clean(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [clean(v, depth + 1) for v in value[:MAX_FACT_ITEMS]]
    return clean(str(value))
