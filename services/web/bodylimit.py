"""A bound on request bodies, checked before anything reads them: a body announced larger
than :data:`BODY_LIMIT` is a 413 at once, and one streamed past it (no Content-Length, or a
false one) stops being read at the limit, with the same 413. Nothing the web accepts comes
near it (an incident's message is 5,000 characters); four anonymous 200 MB posts held 400 MB
of the web before. Heartbeat pings are left to their own middleware, which reads any body
and keeps only its start (services/web/ping.py).

And a write's credentials are checked before its body is read (``credentials_first``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response

from services.web.ping import PING_PATH

BODY_LIMIT = 1 << 20
MESSAGE = f"request body too large: at most {BODY_LIMIT} bytes"


def _too_large(path: str, machine: tuple[str, ...]) -> Response:
    if path.startswith(machine):
        return JSONResponse({"detail": MESSAGE}, 413, headers={"Connection": "close"})
    return Response(
        f"<!doctype html><title>413 · Tocsin</title><h1>413</h1><p>{MESSAGE}.</p>",
        413,
        media_type="text/html",
        headers={"Connection": "close"},
    )


class BodyLimit:
    """ASGI middleware: Content-Length checked first, then every chunk counted."""

    def __init__(self, app: Any, machine: tuple[str, ...] = ()) -> None:
        self.app, self.machine = app, machine

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or PING_PATH.search(path):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length", b"0")
        if length.isdigit() and int(length) > BODY_LIMIT:
            await _too_large(path, self.machine)(scope, receive, send)
            return
        size = 0
        over = answered = started = False

        async def bounded() -> Any:
            # Past the limit the app is told the client left: it stops reading, whatever it
            # is (a route, the form guard, a middleware), and its answer is replaced below.
            # (An exception raised here reaches a route wrapped by the middlewares' task
            # groups, and FastAPI makes any such error a 400.)
            nonlocal size, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > BODY_LIMIT:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def answer(message: Any) -> None:
            nonlocal answered, started
            if not over or started:  # a response begun before the limit goes on as it was
                started = True
                await send(message)
            elif not answered:
                answered = True
                await _too_large(path, self.machine)(scope, receive, send)

        try:
            await self.app(scope, bounded, answer)
        except Exception:
            if not over:
                raise
        if over and not answered and not started:
            answered = True
            await _too_large(path, self.machine)(scope, receive, send)


def credentials_first(check: Callable[[Request], Awaitable[object]]) -> type[APIRoute]:
    """A route class whose ``check`` of the caller runs before the body is read: FastAPI
    reads and parses a body before it solves any dependency, so without it an anonymous
    caller's garbage got a 422 (and its body was held) instead of a 401. ``check`` raises
    what refuses the caller; the route's own dependencies still say who it is."""

    class CredentialsFirst(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def checked(request: Request) -> Response:
                await check(request)
                return await handler(request)

            return checked

    return CredentialsFirst
