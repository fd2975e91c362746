"""A small authoritative DNS server on a free loopback UDP (and TCP) port, for the DNS tables.

It serves :data:`ZONE`; names under ``servfail.test`` get SERVFAIL, names it does not
know NXDOMAIN, known names without the asked type an empty NOERROR (NODATA). Built on
dnspython's wire format, in a thread of its own.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

ZONE: dict[str, dict[str, list[str]]] = {
    "www.example.test.": {"A": ["192.0.2.10", "192.0.2.11"], "AAAA": ["2001:db8::10"]},
    "alias.example.test.": {"CNAME": ["www.example.test."]},
    "example.test.": {
        "MX": ["10 mail.example.test.", "20 backup.example.test."],
        "TXT": ['"v=spf1 ip4:192.0.2.0/24 -all"'],
        "NS": ["ns1.example.test.", "ns2.example.test."],
        "SOA": ["ns1.example.test. hostmaster.example.test. 2026120101 3600 600 86400 300"],
    },
    "nul.example.test.": {"TXT": ['"before\\000after"']},
    "big.example.test.": {"TXT": [f'"{"x" * 200} {i}"' for i in range(12)]},
}
SERVFAIL_UNDER = "servfail.test."


def answer(wire: bytes, limit: int | None) -> bytes:
    query = dns.message.from_wire(wire)
    reply = dns.message.make_response(query)
    question = query.question[0]
    name = question.name.to_text()
    if name.endswith(SERVFAIL_UNDER):
        reply.set_rcode(dns.rcode.SERVFAIL)
    elif name not in ZONE:
        reply.set_rcode(dns.rcode.NXDOMAIN)
    else:
        rtype = dns.rdatatype.to_text(question.rdtype)
        records = ZONE[name].get(rtype, [])
        if records:
            reply.answer.append(dns.rrset.from_text_list(name, 300, "IN", rtype, records))
    try:
        return bytes(reply.to_wire(max_size=limit or 65535))
    except dns.exception.TooBig:  # as a real server does: an empty answer marked truncated
        reply.answer.clear()
        reply.flags |= dns.flags.TC
        return bytes(reply.to_wire())


class _UDP(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(answer(data, 512), self.client_address)


class _TCP(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        (size,) = struct.unpack("!H", self.request.recv(2))
        wire = answer(self.request.recv(size), None)
        self.request.sendall(struct.pack("!H", len(wire)) + wire)


class DNSServer:
    """UDP and TCP on the same loopback port; a context manager."""

    def __init__(self) -> None:
        while True:
            self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _UDP)
            self.port = self.udp.server_address[1]
            try:
                self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), _TCP)
                break
            except OSError:
                self.udp.server_close()
        self.address = f"127.0.0.1:{self.port}"

    def __enter__(self) -> DNSServer:
        for server in (self.udp, self.tcp):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()


def silent_port() -> int:
    """A UDP port that is bound but never answers (a resolver that times out)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    _SILENT.append(sock)
    return int(sock.getsockname()[1])


_SILENT: list[socket.socket] = []
