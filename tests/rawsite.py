"""A site that answers raw bytes, broken HTTP included, for the tests of what an agent says
about answers its HTTP client refuses (aiohttp's errors end with ``url='…'``).

Routes by the first segment of the path, whatever follows it (a secret in the path or the
query reaches the same answer):

- ``/hooks/…``: ``hello garbage`` — not a status line;
- ``/badchunk…``: a chunked body whose chunk size is not hexadecimal;
- ``/bigheaders…``: a header line past aiohttp's limit (8190 bytes);
- ``/manyheaders…``: more header lines than aiohttp admits (128);
- ``/plainredirect…``: 301 to the same path and query over ``http://``;
- ``/echo…``: 200 with a JSON body echoing the ``X-Token`` request header;
- anything else: 200 ``ok``.
"""

from __future__ import annotations

import asyncio
import json

from tests.appthread import LoopThread


def answer(target: str, headers: dict[str, str], port: int) -> bytes:
    """The bytes answering a request of ``target`` (path and query) with ``headers``."""
    first = target.split("/")[1].split("?")[0]
    if first == "hooks":
        return b"hello garbage\r\n\r\n"
    if first == "badchunk":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    if first == "bigheaders":
        return b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 9000 + b"\r\nContent-Length: 0\r\n\r\n"
    if first == "manyheaders":
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
        return b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n"
    if first == "plainredirect":
        location = f"http://127.0.0.1:{port}{target}"
        return f"HTTP/1.1 301 Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
    if first == "echo":
        body = json.dumps({"token": headers.get("x-token", "")}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        return head.encode() + b"\r\n\r\n" + body
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class RawSite(LoopThread):
    """``http://127.0.0.1:port`` answering :func:`answer`'s bytes, then closing."""

    def __init__(self) -> None:
        super().__init__()
        self.port = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def serve(self) -> None:
        self._server = await asyncio.start_server(self._one, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            writer.write(answer(target, headers, self.port))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass  # a client that hung up or sent no request line: nothing to answer
        finally:
            writer.close()
