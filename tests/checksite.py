"""A real website for the check tables: plain HTTP and HTTPS on one loopback port.

The server peeks at the first byte of each connection: a TLS handshake starts
with 0x16, so the same port answers ``http://`` and ``https://``. That is what
``http-to-https`` needs (it asks the ``http://`` twin of an ``https://`` URL,
port kept) without binding the privileged ports 80 and 443. Certificates come
from ``trustme``; a site may carry one expiring at any moment.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme

from checks import CATALOGUE
from checks.probe import Prober
from events import codec, subjects
from events.types import CheckOutcome, CheckRequested, CheckSpec

JSON_BODY = {
    "status": "up",
    "version": "2.1.0",
    "items": [1, 2],
    "count": 3,
    "ok": True,
    "a/b": 1,
    "nested": {"x": None},
}

#: path → (status, headers, body); ``{host}`` in a header is the Host the client asked for.
ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/ok": (
        200,
        {
            "Content-Type": "text/plain",
            "X-Powered-By": "Tocsin-test/1.2",
            "Cache-Control": "no-cache",
        },
        b"Everything is fine here.",
    ),
    "/json": (200, {"Content-Type": "application/json"}, json.dumps(JSON_BODY).encode()),
    "/not-json": (200, {"Content-Type": "text/html"}, b"<html>hello</html>"),
    "/broken": (500, {"Content-Type": "text/plain"}, b"Internal Server Error"),
    "/moved": (302, {"Location": "/ok"}, b""),
    "/to-https": (301, {"Location": "https://{host}/ok"}, b""),
    "/to-https-308": (308, {"Location": "https://{host}/ok"}, b""),
    "/to-http": (301, {"Location": "http://{host}/ok"}, b""),
    "/to-other-host": (301, {"Location": "https://example.org/"}, b""),
    "/no-location": (301, {}, b""),
    # The server hangs up after answering, as HTTP/1.0 servers and many small ones do.
    "/close": (200, {"Connection": "close", "Content-Type": "text/plain"}, b"Bye."),
}
SLOW = "/slow"  # answers /ok after SLOW_DELAY seconds
SLOW_DELAY = 0.6
HTTP10 = "/http10"  # answers /ok as an HTTP/1.0 server: no keep-alive, the client closes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        if path == SLOW:
            time.sleep(SLOW_DELAY)
            path = "/ok"
        if path == HTTP10:
            self.protocol_version = "HTTP/1.0"
            path = "/ok"
        status, headers, body = ROUTES.get(path, (404, {}, b"not found"))
        self.send_response(status)
        host = self.headers.get("Host", "")
        for name, value in headers.items():
            self.send_header(name, value.replace("{host}", host))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = do_PUT = _answer

    def log_message(self, *args: Any) -> None:  # keep test output readable
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        sock.settimeout(5)
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            first = b""
        if first == b"\x16" and self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, addr


class CheckSite:
    """Serve :data:`ROUTES` on 127.0.0.1 over HTTP and HTTPS; ``check`` runs one check on it."""

    def __init__(self, ca: trustme.CA, not_after: datetime | None = None, tls: bool = True) -> None:
        """``tls=False``: plain HTTP only, so an ``https://`` URL of it fails (a closed 443)."""
        self.ca = ca
        self.server = _Server(("127.0.0.1", 0), _Handler)
        if tls:
            cert = ca.issue_cert("127.0.0.1", "localhost", not_after=not_after)
            self.server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert.configure_cert(self.server.tls)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CheckSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    async def check(
        self,
        path: str,
        kind: str,
        expected: Any,
        scheme: str = "http",
        method: str = "GET",
        request_timeout: float = 5.0,
    ) -> CheckOutcome:
        """One check through the agent's own code: parse, the wire, Prober.run."""
        req = CheckRequested(
            at=time.time(),
            request="r",
            group="g",
            location="test",
            url=self.url(path, scheme),
            method=method,
            ip_version=4,
            timeout=request_timeout,
            due=time.time(),
            checks=[CheckSpec("t", kind, CATALOGUE[kind].parse(expected))],
        )
        # As on the wire: the expected value travels as JSON to the agent.
        wire = codec.decode(codec.encode(req), subjects.requested(req.location, req.group))
        assert isinstance(wire, CheckRequested)
        async with Prober(10, self.client_context()) as prober:
            done = await prober.run(wire, "test", "test")
        return done.outcomes[0]
