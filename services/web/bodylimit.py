"""A bound on request bodies, checked before anything reads them: a body announced larger
than :data:`BODY_LIMIT` is a 413 at once, and one streamed past it (no Content-Length, or a
false one) stops being read at the limit, with the same 413. Nothing the web accepts comes
near it (an incident's message is 5,000 characters); four anonymous 200 MB posts held 400 MB
of the web before. Heartbeat pings are left to their own middleware, which reads any body
and keeps only its start (services/web/ping.py).

And a write's credentials are checked before its body is read (``CredentialsFirst``)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import HTTPException, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from services.web import auth, edges
from services.web.ping import is_ping
from services.web.templating import route_path

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
        if scope["type"] != "http" or is_ping(scope):
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


#: Writes open to anyone, each for its reason: logging in (the credentials are the body) and
#: out (a stale session is logged out too), a status page's subscription and its
#: confirmation (double opt-in: nothing happens until the mailbox's owner opens the link);
#: heartbeat pings (the UUID is the secret) are ``is_ping``.
PUBLIC_WRITES = re.compile(r"/(login|logout|status/[^/]+/(subscribe|confirm))")
READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _routed(scope: Any) -> bool:
    """Whether a route takes this method at this path: otherwise the router's 404 or 405
    answers, whoever asks."""
    return any(route.matches(scope)[0] is Match.FULL for route in scope["app"].router.routes)


#: What a read-scope token is told when it tries to write.
READ_ONLY = "this token may only read; create one with --scope write"


class CredentialsFirst:
    """ASGI middleware: a write (a route's method other than a read) needs a session or a
    write-scope API token, checked before anything reads its body. FastAPI reads and parses
    a route's body before it solves any dependency, and the NUL guard parses any form: an
    anonymous caller's form was read and parsed, and its garbage got a 400 or a 422 instead
    of a 401. Every route is covered, a new one included, so no route can forget the
    token's scope (an acknowledgement and a status-page incident did); what else a route
    asks (a CSRF token, an operator) it still checks itself."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = route_path(request)
        if PUBLIC_WRITES.fullmatch(path) or is_ping(scope) or not _routed(scope):
            await self.app(scope, receive, send)
            return
        token = await auth.api_token(request)
        if token is not None and token.scope != "write":
            refused = await edges.http_error(request, HTTPException(403, READ_ONLY))
            await refused(scope, receive, send)
            return
        if token is not None or await auth.current_user(request) is not None:
            await self.app(scope, receive, send)
            return
        refusal = auth.LoginRequired(api=path.startswith("/api/"))
        await auth.login_required_response(request, refusal)(scope, receive, send)
