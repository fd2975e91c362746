"""Bare connections: ``tcp://``, ``tls://``, and STARTTLS on ``smtp://``, ``imap://``, ``pop3://``.

Nothing is sent on ``tcp://`` and ``tls://``. On the mail schemes the prober
reads the greeting, asks for the capabilities, upgrades with STARTTLS (STLS
for POP3) and verifies the certificate as ``tls://`` does, then says goodbye:
a server that does not offer the upgrade fails the group (``starttls``). Every
step, the close included, is within the check's timeout (:class:`Budget`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from checks.base import Response
from checks.observe.common import (
    Address,
    Answer,
    Budget,
    ProbeContext,
    ProbeError,
    certificate_facts,
    lookup,
    not_after,
)
from events.types import CheckRequested, Observation

DEFAULT_PORTS = {"smtp": 25, "imap": 143, "pop3": 110}
LINE_LIMIT = 64 * 1024
MAX_LINES = 200

Upgrade = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[str]]


async def _line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readline()
    except ValueError:  # how readline says a line runs past the reader's limit
        raise ProbeError("starttls", f"a reply line longer than {LINE_LIMIT // 1024} KiB") from None
    if not raw:
        raise ProbeError("starttls", "the server closed the connection")
    return raw[:LINE_LIMIT].decode("utf-8", errors="replace").rstrip("\r\n")


async def _smtp_reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """One SMTP reply: ``250-a`` lines continue it, ``250 b`` ends it."""
    lines = []
    for _ in range(MAX_LINES):
        line = await _line(reader)
        lines.append(line[4:])
        if len(line) < 4 or line[3] != "-":
            code = line[:3]
            if not code.isdigit():
                raise ProbeError("starttls", f"not an SMTP reply: {line[:80]!r}")
            return int(code), lines
    raise ProbeError("starttls", "an endless SMTP reply")


async def _smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    code, greeting = await _smtp_reply(reader)
    if code != 220:
        raise ProbeError("starttls", f"greeting {code} {' '.join(greeting)[:120]}")
    writer.write(b"EHLO tocsin.invalid\r\n")
    code, lines = await _smtp_reply(reader)
    if code != 250:
        raise ProbeError("starttls", f"EHLO refused: {code} {' '.join(lines)[:120]}")
    if not any(x.upper().split()[:1] == ["STARTTLS"] for x in lines[1:]):
        raise ProbeError("starttls", "the server does not offer STARTTLS")
    writer.write(b"STARTTLS\r\n")
    code, lines = await _smtp_reply(reader)
    if code != 220:
        raise ProbeError("starttls", f"STARTTLS refused: {code} {' '.join(lines)[:120]}")
    return greeting[0]


async def _imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    greeting = await _line(reader)
    if not greeting.upper().startswith("* OK"):
        raise ProbeError("starttls", f"not an IMAP greeting: {greeting[:120]!r}")
    writer.write(b"t1 CAPABILITY\r\n")
    caps: list[str] = []
    for _ in range(MAX_LINES):
        line = await _line(reader)
        if line.upper().startswith("* CAPABILITY"):
            caps += line.upper().split()[2:]
        if line.startswith("t1 "):
            break
    if "STARTTLS" not in caps and "STARTTLS" not in greeting.upper():
        raise ProbeError("starttls", "the server does not offer STARTTLS")
    writer.write(b"t2 STARTTLS\r\n")
    for _ in range(MAX_LINES):
        line = await _line(reader)
        if line.startswith("t2 "):
            if line[3:].upper().startswith("OK"):
                return greeting[5:]
            raise ProbeError("starttls", f"STARTTLS refused: {line[:120]}")
    raise ProbeError("starttls", "no answer to STARTTLS")


async def _pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    greeting = await _line(reader)
    if not greeting.startswith("+OK"):
        raise ProbeError("starttls", f"not a POP3 greeting: {greeting[:120]!r}")
    writer.write(b"CAPA\r\n")
    first = await _line(reader)
    caps: list[str] = []
    if first.startswith("+OK"):
        for _ in range(MAX_LINES):
            line = await _line(reader)
            if line == ".":
                break
            caps.append(line.upper().split()[0] if line.split() else "")
    if "STLS" not in caps:
        raise ProbeError("starttls", "the server does not offer STLS")
    writer.write(b"STLS\r\n")
    answer = await _line(reader)
    if not answer.startswith("+OK"):
        raise ProbeError("starttls", f"STLS refused: {answer[:120]}")
    return greeting[4:]


UPGRADES: dict[str, Upgrade] = {"smtp": _smtp, "imap": _imap, "pop3": _pop3}
GOODBYE = {"smtp": b"QUIT\r\n", "imap": b"t3 LOGOUT\r\n", "pop3": b"QUIT\r\n"}


async def connect(
    addresses: Sequence[Address],
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to the first address that takes it, in the resolver's order, as
    ``asyncio.open_connection`` tries them (its own lookup would not be bounded apart)."""
    loop = asyncio.get_running_loop()
    errors: list[OSError] = []
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            errors.append(exc)
            continue
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock, limit=LINE_LIMIT)
    if len({str(e) for e in errors}) == 1:
        raise errors[0]
    raise OSError("; ".join(str(e) for e in errors))


async def close(writer: asyncio.StreamWriter, budget: Budget) -> None:
    """Closed within the close's bound; a TLS peer that never answers close_notify is cut
    off then (asyncio would keep its socket 30 s more), which fails nothing."""
    writer.close()
    try:
        async with budget.closing():
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except (OSError, ssl.SSLError):
        pass


async def observe(req: CheckRequested, url: str, ctx: ProbeContext) -> Answer:
    """A TCP connection, a verified TLS handshake for ``tls://``, a STARTTLS upgrade for mail."""
    parts = urlsplit(url)
    scheme = parts.scheme
    port = parts.port or DEFAULT_PORTS.get(scheme)
    host = parts.hostname or ""
    budget = Budget(req.timeout)
    facts: dict[str, Any] = {}
    try:
        addresses = await lookup(host, port, req.ip_version, budget)
        async with budget.bound():
            reader, writer = await connect(addresses)
            try:
                peer = writer.get_extra_info("peername")
                if peer:
                    facts["address"] = peer[0]
                if scheme in UPGRADES:
                    facts["greeting"] = (await UPGRADES[scheme](reader, writer))[:200]
                if scheme != "tcp":  # tls:// at once, the mail schemes once upgraded
                    await writer.start_tls(ctx.ssl_context, server_hostname=host)
                if scheme in GOODBYE:
                    writer.write(GOODBYE[scheme])
            except BaseException:
                writer.close()
                raise
    except (TimeoutError, OSError, ssl.SSLError, ProbeError) as exc:
        answer = budget.failed(exc)
        answer[0].facts.update(facts)
        return answer
    elapsed = budget.ms()
    sslobj = writer.get_extra_info("ssl_object")
    expiry = not_after(sslobj.getpeercert()) if sslobj is not None else None
    facts.update(certificate_facts(sslobj))
    await close(writer, budget)
    return (
        Observation(elapsed_ms=round(elapsed, 2), cert_not_after=expiry, facts=facts),
        Response(0, elapsed_ms=elapsed, cert_not_after=expiry, url=url, facts=facts),
    )
