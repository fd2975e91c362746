"""Servers on loopback that take their time, for the table of checks held to their whole
timeout (checks/test_whole_timeout.py). Each waits ``delay`` seconds where a server may, then
holds on without a word until the server stops (``released``):

- :class:`SlowSockets` (aiohttp, ws:// and wss://): ``/noclose`` answers ``pong: TEXT`` at
  once but never answers the close; ``/late`` answers each message ``delay`` late.
- :class:`SlowServers` (threads): ``dns`` says "truncated" over UDP ``delay`` late and never
  answers over TCP; ``tls`` shakes hands ``delay`` late, ``pop3`` greets ``delay`` late and
  upgrades with STLS, and neither answers the TLS close (close_notify) nor hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable

import dns.flags
import dns.message
from aiohttp import WSMsgType, web

from tests.appthread import AppThread


class SlowSockets(AppThread):
    """``ws://127.0.0.1:port`` and ``wss://127.0.0.1:tls_port``, in a thread of its own."""

    def __init__(self, tls: ssl.SSLContext, delay: float) -> None:
        self.delay = delay
        self.released = asyncio.Event()
        routes = [web.get("/noclose", self._noclose), web.get("/late", self._late)]
        super().__init__(routes, tls)

    async def _noclose(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoclose=False)  # the close frame is read, never answered
        await ws.prepare(request)
        async for message in ws:  # ends at the client's close
            if message.type == WSMsgType.TEXT:
                await ws.send_str(f"pong: {message.data}")
        await self.released.wait()
        return ws

    async def _late(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await asyncio.sleep(self.delay)
                # The client may have given up meanwhile.
                with contextlib.suppress(ConnectionResetError):
                    await ws.send_str(f"pong: {message.data}")
        return ws

    async def close(self) -> None:
        self.released.set()
        await super().close()


class SlowServers:
    """``dns`` (UDP and TCP on one port), ``tls`` and ``pop3`` on loopback ports, each
    connection or datagram answered in a thread of its own; a context manager."""

    def __init__(self, tls: ssl.SSLContext, delay: float) -> None:
        self.tls_context, self.delay = tls, delay
        self.released = threading.Event()
        self._sockets: list[socket.socket] = []
        udp, tcp = self._same_port()
        self.dns = udp.getsockname()[1]
        self.tls = self._listen(self._tls_handshake)
        self.pop3 = self._listen(self._pop3_stls)
        self._start(self._datagrams, udp)
        self._start(self._accepts, tcp, self._hold)

    def __enter__(self) -> SlowServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            sock.close()

    def _same_port(self) -> tuple[socket.socket, socket.socket]:
        while True:
            udp = self._keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            udp.bind(("127.0.0.1", 0))
            tcp = self._keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                tcp.bind(udp.getsockname())
            except OSError:  # that TCP port is taken: another pair
                continue
            tcp.listen()
            return udp, tcp

    def _keep(self, sock: socket.socket) -> socket.socket:
        self._sockets.append(sock)
        return sock

    def _listen(self, handle: Callable[[socket.socket], None]) -> int:
        sock = self._keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        self._start(self._accepts, sock, handle)
        return int(sock.getsockname()[1])

    @staticmethod
    def _start(target: Callable[..., None], *args: object) -> None:
        threading.Thread(target=target, args=args, daemon=True).start()

    def _accepts(self, sock: socket.socket, handle: Callable[[socket.socket], None]) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:  # the server stops
                return
            self._start(self._serve, self._keep(conn), handle)

    def _serve(self, conn: socket.socket, handle: Callable[[socket.socket], None]) -> None:
        with contextlib.suppress(OSError):  # the client gave up: nothing to tell it
            handle(conn)

    def _datagrams(self, sock: socket.socket) -> None:
        while True:
            try:
                data, peer = sock.recvfrom(4096)
            except OSError:
                return
            if self.released.is_set():  # shut down: recvfrom woke with nothing
                return
            self._start(self._truncated, sock, data, peer)

    def _truncated(self, sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        """An empty answer marked truncated, late: the client is to ask again over TCP."""
        reply = dns.message.make_response(dns.message.from_wire(data))
        reply.flags |= dns.flags.TC
        self.released.wait(self.delay)
        with contextlib.suppress(OSError):
            sock.sendto(reply.to_wire(), peer)

    def _hold(self, conn: socket.socket) -> None:
        """Never a word, never a hang-up: what is sent stays unread in the kernel's buffer."""
        self.released.wait()

    def _tls_handshake(self, conn: socket.socket) -> None:
        self.released.wait(self.delay)
        with self.tls_context.wrap_socket(conn, server_side=True):
            self._hold(conn)

    def _pop3_stls(self, conn: socket.socket) -> None:
        self.released.wait(self.delay)
        conn.sendall(b"+OK slow POP3 ready\r\n")
        lines = conn.makefile("rb")
        while line := lines.readline().strip().upper():
            if line == b"CAPA":
                conn.sendall(b"+OK capabilities\r\nSTLS\r\n.\r\n")
            elif line == b"STLS":
                conn.sendall(b"+OK begin TLS\r\n")
                with self.tls_context.wrap_socket(conn, server_side=True):
                    self._hold(conn)
                return
