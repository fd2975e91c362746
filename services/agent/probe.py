"""Make the one request of a request group and judge every check of it on the answer.

Shared by the agent service and the one-shot ``tocsin check`` command, so both
observe and evaluate the same way.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from typing import Any

import aiohttp

from events.types import CheckCompleted, CheckOutcome, CheckRequested, Observation
from services import __version__
from services.agent.checks import CATALOGUE
from services.agent.checks.base import Response

USER_AGENT = f"Tocsin/{__version__} (uptime monitor)"
MAX_BODY = 1024 * 1024
#: Headers worth keeping in the log: enough to explain a verdict, never cookies.
KEPT_HEADERS = ("content-type", "content-length", "location", "server", "cache-control", "date")


class Prober:
    """Holds one aiohttp session per IP version; use as an async context manager."""

    def __init__(self, concurrency: int = 500) -> None:
        self.concurrency = concurrency
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    async def __aenter__(self) -> Prober:
        for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
            connector = aiohttp.TCPConnector(
                family=family, limit=self.concurrency, ttl_dns_cache=60, ssl=_ssl_context(),
                enable_cleanup_closed=True,
            )
            self._sessions[version] = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}, auto_decompress=True,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for session in self._sessions.values():
            await session.close()

    async def observe(self, req: CheckRequested) -> tuple[Observation, Response | None]:
        session = self._sessions[req.ip_version]
        kwargs: dict[str, Any] = {"allow_redirects": False,
                                  "timeout": aiohttp.ClientTimeout(total=req.timeout)}
        if req.request_data is not None:
            rd = req.request_data
            kwargs["headers"] = dict(rd.headers)
            if rd.data is not None:
                kwargs["data"] = rd.data.encode()
                if rd.is_json:
                    kwargs["headers"].setdefault("Content-Type", "application/json")
        start = time.perf_counter()
        try:
            async with session.request(req.method, req.url, **kwargs) as resp:
                cert_not_after = _cert_not_after(resp)
                body = await resp.content.read(MAX_BODY)
                elapsed = (time.perf_counter() - start) * 1000
                headers = {k.lower(): v for k, v in resp.headers.items()}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ssl.SSLError) as exc:
            elapsed = (time.perf_counter() - start) * 1000
            kind, message = _describe(exc, req.timeout)
            return Observation(elapsed_ms=round(elapsed, 2), error=message, error_kind=kind), None
        response = Response(resp.status, headers, body, elapsed, cert_not_after, req.url)
        kept = {k: headers[k][:500] for k in KEPT_HEADERS if k in headers}
        return Observation(status=resp.status, headers=kept, elapsed_ms=round(elapsed, 2),
                           body_bytes=len(body), cert_not_after=cert_not_after), response

    async def run(self, req: CheckRequested, agent: str, location: str) -> CheckCompleted:
        started = time.time()
        observation, response = await self.observe(req)
        return CheckCompleted(
            at=time.time(), request=req.request, group=req.group, agent=agent,
            location=location, started=started, observation=observation,
            outcomes=evaluate_all(req, observation, response),
        )


def evaluate_all(req: CheckRequested, obs: Observation, response: Response | None
                 ) -> list[CheckOutcome]:
    outcomes = []
    for spec in req.checks:
        if response is None:
            outcomes.append(CheckOutcome(spec.task, spec.kind, "failure",
                                         f"{obs.error_kind}: {obs.error}"))
            continue
        module = CATALOGUE.get(spec.kind)
        if module is None:
            outcomes.append(CheckOutcome(spec.task, spec.kind, "error",
                                         f"this agent does not know the check {spec.kind!r}"))
            continue
        try:
            verdict = module.evaluate(response, spec.expected)
        except Exception as exc:  # a check that cannot be evaluated is an error, not a crash
            outcomes.append(CheckOutcome(spec.task, spec.kind, "error", f"{exc}"[:500]))
            continue
        outcomes.append(CheckOutcome(spec.task, spec.kind, verdict.status, verdict.detail[:500],
                                     verdict.value))
    return outcomes


def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _cert_not_after(resp: aiohttp.ClientResponse) -> float | None:
    conn = resp.connection
    transport = conn.transport if conn is not None else None
    sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
    if sslobj is None:
        return None
    cert = sslobj.getpeercert()
    if not cert or "notAfter" not in cert:
        return None
    return float(ssl.cert_time_to_seconds(cert["notAfter"]))


def _describe(exc: BaseException, timeout: float) -> tuple[str, str]:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout", f"no answer within {timeout:g}s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "tls", str(exc.certificate_error)
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "tls", str(exc)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns", str(exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect", str(exc.os_error) if exc.os_error else str(exc)
    return "http", str(exc) or type(exc).__name__
