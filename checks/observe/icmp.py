"""``icmp://host?count=3``: ICMP echo requests, the replies counted and timed.

An unprivileged ICMP socket (``SOCK_DGRAM``) is used where the system allows it
(Linux: the process's group within ``net.ipv4.ping_group_range``); otherwise a
raw socket, which needs root or ``CAP_NET_RAW``; where neither can be opened
the group fails with an error that says so. The echoes go out within the first
half of the timeout (:func:`spacing`), each then given at least the other half to
be answered; loss counts those sent only. No reply at all fails the group;
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
from checks.observe.common import FAMILIES, Answer, Budget, ProbeContext, ProbeError, lookup
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


def spacing(count: int, timeout: float) -> float:
    """Seconds between echo requests: ``INTERVAL``, closer where ``count`` of them would not
    all go out within the first half of ``timeout``, which leaves every one sent at least
    the other half to be answered."""
    return min(INTERVAL, timeout / (2 * count))


class Echoes:
    """The echo requests of one ping on one socket, and the replies read for them.

    Plain non-blocking socket calls and ``add_reader`` rather than ``loop.sock_sendto`` and
    ``loop.sock_recv``: uvloop, the agent's loop, raises NotImplementedError for those on an
    ICMP socket; these work on asyncio's loop and on uvloop alike.
    """

    def __init__(self, version: int, sock: socket.socket, kind: str) -> None:
        self.version, self.sock, self.raw = version, sock, kind == "raw"
        self.ident = os.getpid() & 0xFFFF
        self.token = os.urandom(16)
        self.sent: dict[int, float] = {}
        self.rtts: dict[int, float] = {}
        self.all_sent = False
        self.answered = asyncio.Event()

    async def send(self, address: str, seq: int) -> None:
        loop = asyncio.get_running_loop()
        packet = echo_request(self.version, self.ident, seq, self.token)
        while True:
            try:
                self.sock.sendto(packet, (address, 0))
                break
            except BlockingIOError:  # the send buffer full: wait until it has room
                room = loop.create_future()
                loop.add_writer(self.sock.fileno(), room.set_result, None)
                try:
                    await room
                finally:
                    loop.remove_writer(self.sock.fileno())
        self.sent[seq] = time.perf_counter()

    def read(self) -> None:
        """Every datagram waiting on the socket (``add_reader``'s callback)."""
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                # Nothing left (BlockingIOError), or an ICMP error the kernel queued for the
                # socket (unreachable…), reported once: not a reply; what follows it is read
                # on the next call, the socket being still readable.
                break
            now = time.perf_counter()
            got = parse_reply(self.version, data, self.raw)
            # Unprivileged sockets get their own replies only, with an identifier of the
            # kernel's choosing; a raw socket sees every reply: the token tells ours.
            if got is None or got[2] != self.token or got[1] not in self.sent:
                continue
            if self.raw and got[0] != self.ident:
                continue
            self.rtts.setdefault(got[1], (now - self.sent[got[1]]) * 1000)
        self.check()

    def check(self) -> None:
        if self.all_sent and len(self.rtts) == len(self.sent):
            self.answered.set()


async def ping(address: str, version: int, count: int, timeout: float) -> dict[str, Any]:
    """Send up to ``count`` echo requests ``spacing`` apart; wait for replies until ``timeout``.

    An echo is sent only while half the timeout is left, so each has at least that long to be
    answered; those an agent too busy could not send in time are neither sent nor lost.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    interval = spacing(count, timeout)
    sock, kind = open_socket(version)
    echoes = Echoes(version, sock, kind)
    with sock:
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), echoes.read)
        try:
            # The sends too: one may wait for room in a full send buffer.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    for seq in range(1, count + 1):
                        if seq > 1:
                            await asyncio.sleep(interval)
                            if deadline - loop.time() < timeout / 2:
                                break
                        await echoes.send(address, seq)
                    echoes.all_sent = True
                    echoes.check()
                    await echoes.answered.wait()
        finally:
            loop.remove_reader(sock.fileno())
    sent = len(echoes.sent)
    times = sorted(echoes.rtts.values())
    facts: dict[str, Any] = {
        "address": address,
        "socket": kind,
        "sent": sent,
        "received": len(times),
        "loss_pct": round(100 * (sent - len(times)) / sent, 1),
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
    budget = Budget(req.timeout)
    try:
        host = parts.hostname or ""
        infos = await lookup(host, None, req.ip_version, budget, socket.SOCK_RAW)
        address = str(infos[0][4][0])
        # The echoes get what the lookup left of the timeout.
        facts = await ping(address, req.ip_version, count, budget.left())
    except (OSError, ProbeError) as exc:
        return budget.failed(exc)
    if not facts["received"]:
        obs, _ = budget.failed(
            ProbeError("icmp", f"no echo reply from {address} ({facts['sent']} sent)")
        )
        obs.facts = facts
        return obs, None
    avg = facts["rtt_ms"]["avg"]
    return (
        Observation(elapsed_ms=avg, facts=facts),
        Response(0, elapsed_ms=avg, url=url, facts=facts),
    )
