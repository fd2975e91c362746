"""A site (aiohttp) whose answers arrive in pieces, for the checks on long bodies.

Each body is written in pieces of :data:`PIECE` bytes with a pause between them, so the
client sees many network reads: a probe that judged what it had buffered after the first
one would see a fraction of the page. ``/chunked`` and ``/chunked-json`` use chunked
transfer encoding, ``/paced`` a Content-Length, ``/huge`` and ``/huge-json`` are longer than
the agent reads;
``/stalled`` sends its headers and a first piece at once, the rest after :data:`STALL` s.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from checks.base import MAX_BODY
from tests.appthread import AppThread

PIECE = 16 * 1024
PAUSE = 0.005
#: Written last, after about 300 kB of text.
LAST_WORDS = "the end of a long page"
LONG_PAGE = ("filler line of a long page\n" * 11_000 + LAST_WORDS).encode()
LONG_JSON = json.dumps({"padding": "x" * 300_000, "status": "up"}).encode()
#: ``/huge``: its first words, then text past the agent's limit, then its last words.
FIRST_WORDS = "the start of a huge page"
PAST_THE_LIMIT = "written after the agent's limit"
HUGE_PAGE = FIRST_WORDS.encode() + b"y" * MAX_BODY + PAST_THE_LIMIT.encode()
#: ``/huge-json``: a JSON document longer than the agent reads.
HUGE_JSON = json.dumps({"padding": "x" * MAX_BODY, "status": "up"}).encode()
STALL = 3.0


async def paced(
    request: web.Request, body: bytes, content_type: str, chunked: bool = True
) -> web.StreamResponse:
    """``body`` in pieces with a pause between them; chunked or with its Content-Length."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = len(body)
    await response.prepare(request)
    try:
        for at in range(0, len(body), PIECE):
            await response.write(body[at : at + PIECE])
            await asyncio.sleep(PAUSE)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client stopped reading (the agent's limit on /huge): nothing to tell
    return response


class StreamSite(AppThread):
    """``http://127.0.0.1:port`` with the routes above, in a thread of its own."""

    def __init__(self) -> None:
        super().__init__(
            [
                web.get("/chunked", self._chunked),
                web.get("/paced", self._paced),
                web.get("/chunked-json", self._json),
                web.get("/huge", self._huge),
                web.get("/huge-json", self._huge_json),
                web.get("/stalled", self._stalled),
            ]
        )

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        return await paced(request, LONG_PAGE, "text/plain")

    async def _paced(self, request: web.Request) -> web.StreamResponse:
        return await paced(request, LONG_PAGE, "text/plain", chunked=False)

    async def _json(self, request: web.Request) -> web.StreamResponse:
        return await paced(request, LONG_JSON, "application/json")

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        return await paced(request, HUGE_PAGE, "text/plain")

    async def _huge_json(self, request: web.Request) -> web.StreamResponse:
        return await paced(request, HUGE_JSON, "application/json")

    async def _stalled(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(FIRST_WORDS.encode())
            await asyncio.sleep(STALL)
            await response.write(LAST_WORDS.encode())
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client gave up waiting, as it should
        return response
