"""Real mail servers on loopback for the STARTTLS tables: aiosmtpd for SMTP, and small
IMAP and POP3 servers that speak just enough (greeting, capabilities, STARTTLS/STLS).

Each runs in a thread of its own with its own event loop, like the check site, so a
test's event loop only holds the client side.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.controller import Controller

from runtime.embedded import free_port
from tests.appthread import LoopThread

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def smtp_server(tls: ssl.SSLContext | None) -> Controller:
    """aiosmtpd offering STARTTLS when given a TLS context; started, stop() it after."""
    controller = Controller(
        _Sink(), hostname="127.0.0.1", port=free_port(), tls_context=tls, ident="Tocsin-test"
    )
    controller.start()
    return controller


async def _read(reader: asyncio.StreamReader) -> str:
    return (await reader.readline()).decode().strip()


def imap_handler(tls: ssl.SSLContext, offer: bool) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1] Tocsin-test IMAP ready\r\n")
        while line := await _read(reader):
            tag, _, command = line.partition(" ")
            if command.upper() == "CAPABILITY":
                caps = "IMAP4rev1 STARTTLS" if offer else "IMAP4rev1"
                writer.write(f"* CAPABILITY {caps}\r\n{tag} OK done\r\n".encode())
            elif command.upper() == "STARTTLS" and offer:
                writer.write(f"{tag} OK begin TLS\r\n".encode())
                await writer.drain()
                await writer.start_tls(tls)
            elif command.upper() == "LOGOUT":
                writer.write(f"* BYE\r\n{tag} OK bye\r\n".encode())
                break
            else:
                writer.write(f"{tag} BAD unknown\r\n".encode())
        writer.close()

    return handle


def pop3_handler(tls: ssl.SSLContext, offer: bool) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"+OK Tocsin-test POP3 ready\r\n")
        while line := await _read(reader):
            command = line.upper()
            if command == "CAPA":
                caps = "USER\r\nSTLS\r\n" if offer else "USER\r\n"
                writer.write(f"+OK capabilities\r\n{caps}.\r\n".encode())
            elif command == "STLS" and offer:
                writer.write(b"+OK begin TLS\r\n")
                await writer.drain()
                await writer.start_tls(tls)
            elif command == "QUIT":
                writer.write(b"+OK bye\r\n")
                break
            else:
                writer.write(b"-ERR unknown\r\n")
        writer.close()

    return handle


class StreamServer(LoopThread):
    """An asyncio stream server on 127.0.0.1 in a thread of its own (a context manager)."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.port = 0  # the kernel's, at bind time: known once entered
        self._server: asyncio.Server | None = None

    async def serve(self) -> None:
        self._server = await asyncio.start_server(self.handler, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
