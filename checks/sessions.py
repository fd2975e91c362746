"""What the prober's HTTP sessions see of their connections: the certificate of each answer,
and each step of a request told to the run log of a run someone watches."""

from __future__ import annotations

import ssl
import time
from typing import Any

import aiohttp
from aiohttp.connector import Connection

from checks.runlog import RunLog, safe_url


class PeerResponse(aiohttp.ClientResponse):
    """A response that keeps the TLS object of its connection, taken as the answer starts.

    aiohttp closes a connection the server does not keep alive (HTTP/1.0, ``Connection:
    close``) as soon as the body is in, and drops its transport with it: read later, the
    certificate of such an answer would be missing, an expired one hidden."""

    ssl_object: ssl.SSLObject | None = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        if transport is not None:
            self.ssl_object = transport.get_extra_info("ssl_object")
        return await super().start(connection)


def tls_line(sslobj: ssl.SSLObject) -> str:
    cert: Any = sslobj.getpeercert() or {}

    def name(field: str) -> str:
        rdns = dict(kv for rdn in cert.get(field, ()) for kv in rdn)
        return str(rdns.get("commonName") or rdns.get("organizationName") or "?")

    cipher = sslobj.cipher()
    return (
        f"{sslobj.version()} {cipher[0] if cipher else ''}; certificate {name('subject')} "
        f"issued by {name('issuer')}, valid until {cert.get('notAfter', '?')}"
    )


def tracing() -> aiohttp.TraceConfig:
    """Connection steps of each request, told to its run log (``trace_request_ctx``)."""
    trace = aiohttp.TraceConfig()

    def runlog(ctx: Any) -> RunLog | None:
        return ctx.trace_request_ctx if isinstance(ctx.trace_request_ctx, RunLog) else None

    async def dns_start(_s: Any, ctx: Any, _p: Any) -> None:
        ctx.dns_started = time.perf_counter()

    async def dns_end(_s: Any, ctx: Any, params: Any) -> None:
        if log := runlog(ctx):
            took = (time.perf_counter() - getattr(ctx, "dns_started", time.perf_counter())) * 1000
            await log.line("dns", f"{params.host} resolved in {took:.0f} ms")

    async def dns_cached(_s: Any, ctx: Any, params: Any) -> None:
        if log := runlog(ctx):
            await log.line("dns", f"{params.host} from the resolver cache")

    async def connect_start(_s: Any, ctx: Any, _p: Any) -> None:
        ctx.connect_started = time.perf_counter()

    async def connect_end(_s: Any, ctx: Any, _p: Any) -> None:
        if log := runlog(ctx):
            took = time.perf_counter() - getattr(ctx, "connect_started", time.perf_counter())
            await log.line(
                "connect", f"connection open (with any TLS handshake) in {took * 1000:.0f} ms"
            )

    async def reused(_s: Any, ctx: Any, _p: Any) -> None:
        if log := runlog(ctx):
            await log.line("connect", "reusing an open connection")

    async def sent(_s: Any, ctx: Any, params: Any) -> None:
        # Method and path only: request headers and bodies may hold secrets.
        if log := runlog(ctx):
            await log.line("sent", f"{params.method} {safe_url(str(params.url))}")

    trace.on_dns_resolvehost_start.append(dns_start)
    trace.on_dns_resolvehost_end.append(dns_end)
    trace.on_dns_cache_hit.append(dns_cached)
    trace.on_connection_create_start.append(connect_start)
    trace.on_connection_create_end.append(connect_end)
    trace.on_connection_reuseconn.append(reused)
    trace.on_request_headers_sent.append(sent)
    trace.freeze()
    return trace
