"""The web's bound on request bodies (``runtime/bodylimit.py``): 1 MiB, as nothing the web
accepts comes near it (an incident's message is 5,000 characters).

And a write's credentials are checked before its body is read (``CredentialsFirst``)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import HTTPException, Request
from starlette.routing import Match

from runtime import bodylimit as bounds
from runtime.bodylimit import BODY_LIMIT
from services.web import auth, edges
from services.web.ping import is_ping
from services.web.templating import route_path, scope_path


class BodyLimit(bounds.BodyLimit):
    """The web's bound (:data:`BODY_LIMIT`); heartbeat pings are left to their own middleware,
    which reads any body and keeps only its start (services/web/ping.py)."""

    def __init__(self, app: Any, machine: tuple[str, ...] = ()) -> None:
        super().__init__(app, machine, BODY_LIMIT, is_ping)

    def path(self, scope: Any) -> str:
        # Within the app, under root_path too: an API path answers its 413 in JSON.
        return scope_path(scope)


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
