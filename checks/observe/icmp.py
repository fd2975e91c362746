"""``icmp://host?count=3``: ICMP echo requests, the replies counted and timed.

An unprivileged ICMP socket (``SOCK_DGRAM``) is used where the system allows it
(Linux: the process's group within ``net.ipv4.ping_group_range``); otherwise a
raw socket, which needs root or ``CAP_NET_RAW``; where neither can be opened
the group fails with an error that says so. No reply at all fails the group;
partial loss is for ``packet-loss`` to grade, the mean round trip for
``response-time``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from checks.base import Response
from checks.observe.common import FAMILIES, Answer, ProbeContext, ProbeError, failed
from events.types import CheckRequested, Observation

#: Echo request and reply types, by IP version.
ECHO = {4: (8, 0), 6: (128, 129)}
PROTOCOLS = {4: socket.IPPROTO_ICMP, 6: socket.IPPROTO_ICMPV6}
INTERVAL = 0.2
NO_PERMISSION = (
    "cannot send ICMP: unprivileged ICMP sockets are not allowed for this process's group "
    "(sysctl net.ipv4.ping_group_range) and raw sockets need root or CAP_NET_RAW"
)


def open_socket(version: int) -> tuple[socket.socket, str]:
    """An ICMP socket and its kind (``unprivileged`` or ``raw``), or a ProbeError saying why not."""
    family, proto = FAMILIES[version], PROTOCOLS[version]
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), "unprivileged"
    except PermissionError:
        pass
    try:
        return socket.socket(family, socket.SOCK_RAW, proto), "raw"
    except PermissionError:
        raise ProbeError("icmp", NO_PERMISSION) from None


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(version: int, ident: int, seq: int, token: bytes) -> bytes:
    kind = ECHO[version][0]
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    # The kernel fills the checksum of ICMPv6 and of unprivileged sockets; raw IPv4 needs it.
    return struct.pack("!BBHHH", kind, 0, checksum(header + token), ident, seq) + token


def parse_reply(version: int, data: bytes, raw: bool) -> tuple[int, int, bytes] | None:
    """(ident, seq, payload) of an echo reply; ``None`` for any other ICMP message."""
    if version == 4 and raw:
        data = data[(data[0] & 0x0F) * 4 :]  # a raw IPv4 socket hands the IP header too
    if len(data) < 8:
        return None
    kind, _, _, ident, seq = struct.unpack("!BBHHH", data[:8])
    if kind != ECHO[version][1]:
        return None
    return ident, seq, data[8:]


async def _address(host: str, version: int) -> str:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, family=FAMILIES[version], type=socket.SOCK_RAW)
    return str(infos[0][4][0])


async def ping(address: str, version: int, count: int, timeout: float) -> dict[str, Any]:
    """Send ``count`` echo requests ``INTERVAL`` apart; wait for replies until ``timeout``."""
    loop = asyncio.get_running_loop()
    sock, kind = open_socket(version)
    sock.setblocking(False)
    ident = os.getpid() & 0xFFFF
    token = os.urandom(16)
    sent: dict[int, float] = {}
    rtts: dict[int, float] = {}

    async def receive() -> None:
        while len(rtts) < count:
            data = await loop.sock_recv(sock, 4096)
            got = parse_reply(version, data, kind == "raw")
            # Unprivileged sockets get their own replies only, with an identifier of the
            # kernel's choosing; a raw socket sees every reply: the token tells ours.
            if got is None or got[2] != token or got[1] not in sent:
                continue
            if kind == "raw" and got[0] != ident:
                continue
            rtts.setdefault(got[1], (time.perf_counter() - sent[got[1]]) * 1000)

    with sock:
        receiver = asyncio.ensure_future(receive())
        try:
            async with asyncio.timeout(timeout):
                for seq in range(1, count + 1):
                    sent[seq] = time.perf_counter()
                    await loop.sock_sendto(
                        sock, echo_request(version, ident, seq, token), (address, 0)
                    )
                    if seq < count:
                        await asyncio.sleep(INTERVAL)
                await receiver
        except TimeoutError:
            pass
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await receiver
    times = sorted(rtts.values())
    facts: dict[str, Any] = {
        "address": address,
        "socket": kind,
        "sent": count,
        "received": len(times),
        "loss_pct": round(100 * (count - len(times)) / count, 1),
    }
    if times:
        facts["rtt_ms"] = {
            "min": round(times[0], 3),
            "avg": round(sum(times) / len(times), 3),
            "max": round(times[-1], 3),
        }
    return facts


async def observe(req: CheckRequested, url: str, ctx: ProbeContext) -> Answer:
    parts = urlsplit(url)
    count = int(dict(parse_qsl(parts.query)).get("count", "3"))
    start = time.perf_counter()
    try:
        address = await _address(parts.hostname or "", req.ip_version)
        facts = await ping(address, req.ip_version, count, req.timeout)
    except (OSError, ProbeError) as exc:
        return failed(exc, start, req.timeout)
    if not facts["received"]:
        obs, _ = failed(
            ProbeError("icmp", f"no echo reply from {address} ({count} sent)"), start, req.timeout
        )
        obs.facts = facts
        return obs, None
    avg = facts["rtt_ms"]["avg"]
    return (
        Observation(elapsed_ms=avg, facts=facts),
        Response(0, elapsed_ms=avg, url=url, facts=facts),
    )
