"""What every request goes through before and after its route: parameter hygiene, security
headers, and error answers that are a 4xx with a reason, or a bare 500, never a traceback.

The class of bug this closes: a value the route's types accept but PostgreSQL refuses (a NUL
in text, an integer past bigint, an instant outside the calendar once moved to UTC) used to
reach the query and come back as a 500. Parameters are bounded by their types (``Page``,
``Offset``, ``Seq``, ``Instant``); NUL is refused for every route at once by a dependency;
and whatever PostgreSQL still calls a data error is the client's, hence a 400.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BeforeValidator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from runtime.logs import Log
from services.web.templating import render, route_path, scope_path

log = Log("tocsin.web")

#: The largest value of a PostgreSQL bigint: log sequences and result sequences are bigints.
BIGINT_MAX = 2**63 - 1
#: Listings page through at most this many rows; beyond it no installation has data.
OFFSET_MAX = 10**9
PAGE_MAX = OFFSET_MAX // 1000

#: Exactly what the pages load: the vendored htmx and its SSE extension and the stylesheet
#: from /static, the live stream from /live, and SVG inline in the page (charts) or as images
#: (badges). No inline script or style, no frames, no plug-ins, forms only to ourselves.
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

_HEADER_BYTES = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

# Prefixes answered in JSON; everything else is a page and gets the HTML error page.
MACHINE = ("/api/", "/badges/", "/metrics", "/static/", "/openapi.json", "/healthz")


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("outside the representable range once converted to UTC") from None


#: RFC 3339, as the schema's ``date-time`` says: not a number of seconds, not a bare date.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError("expected a date and time as in 2026-01-31T12:00:00Z")
        return datetime.fromisoformat(value)
    return value


#: A date and time of an API parameter, that PostgreSQL can store.
Instant = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_utc)]


def parse_instant(value: str) -> datetime | None:
    """A page's free-text date field, or None when empty; a 422 when it is not one."""
    if not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        raise HTTPException(422, f"not a date and time: {value!r}") from None


def _has_nul(values: Any) -> bool:
    return any("\x00" in v for v in values if isinstance(v, str))


async def reject_nul(request: Request) -> None:
    """No text the web accepts may hold a NUL: PostgreSQL cannot store it, and no name,
    URL or search of Tocsin has one. Path, query and form fields alike."""
    if "\x00" in request.url.path or _has_nul(request.query_params.values()):
        raise HTTPException(400, "a parameter holds a NUL character")
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        if _has_nul((await request.form()).values()):
            raise HTTPException(400, "a form field holds a NUL character")


def _machine(request: Request) -> bool:
    return route_path(request).startswith(MACHINE)


def _htmx(headers: Any) -> bool:
    """An htmx request (not a boosted page load): it gets a partial, not a page."""
    return bool(headers.get("hx-request")) and not headers.get("hx-boosted")


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if _machine(request):
        return await http_exception_handler(request, exc)
    return render(
        request,
        "_error.html" if _htmx(request.headers) else "error.html",
        {"status": exc.status_code, "detail": exc.detail, "live": False},
        status_code=exc.status_code,
    )


def _printable(value: Any) -> Any:
    """A location or message as text any response can encode: a lone surrogate of the body
    (``"\\ud800"`` is valid JSON, not UTF-8) becomes U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode()
    return value


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    # Where and what, never the input itself: echoed, it may be text no encoder takes.
    errors = [
        {
            "loc": [_printable(p) for p in e.get("loc", ())],
            "msg": _printable(e.get("msg", "")),
            "type": e.get("type", ""),
        }
        for e in exc.errors()
    ]
    if _machine(request):
        return JSONResponse({"detail": errors}, 422)
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in errors)
    return await http_error(request, StarletteHTTPException(422, detail))


async def data_error(request: Request, exc: asyncpg.DataError) -> Response:
    # Reached only by a value no parameter type caught: say which class, never the value.
    log.warning("request refused by PostgreSQL", path=request.url.path, error=type(exc).__name__)
    return await http_error(request, StarletteHTTPException(400, "a parameter is out of range"))


class DatabaseUnreachable(Exception):
    """A connection to PostgreSQL could not be made (raised by the pool's ``connect``)."""


async def connect_or_unreachable(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """The pool's ``connect``: a refused or timed-out connection is told apart from any other
    OSError of a request (NATS has its own), so only the database's outage is a 503 of its."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except OSError as exc:
        raise DatabaseUnreachable(f"{type(exc).__name__}: {exc}") from exc


#: What PostgreSQL out of reach raises: no connection to be had, a connection lost, the
#: server shutting down or starting, or refusing more connections.
UNREACHABLE = (
    DatabaseUnreachable,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
)
#: Seconds a client is told to wait before trying again while the database is away.
RETRY_AFTER = 10
UNREACHABLE_DETAIL = "the database (read model) is out of reach: retry in a moment"


def unreachable_response(path: str) -> Response:
    """The 503 of an outage; ``path`` within the application (``scope_path``)."""
    headers = {"Retry-After": str(RETRY_AFTER)}
    if path.startswith(MACHINE):
        return JSONResponse({"detail": UNREACHABLE_DETAIL}, 503, headers=headers)
    return Response(
        "<!doctype html><title>503 · Tocsin</title><h1>503</h1>"
        f"<p>Service unavailable: {UNREACHABLE_DETAIL}.</p>",
        503,
        media_type="text/html",
        headers=headers,
    )


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Edges:
    """Outermost middleware: the security headers on every response (errors and static files
    included), and a bare 500 for any exception a route lets through, logged here once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k.encode(), v.encode())
                    for k, v in SECURITY_HEADERS.items()
                    if k.encode() not in names
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except UNREACHABLE as exc:
            # An outage, not a bug: a 503 that says so, logged without a traceback.
            log.warning(
                "database out of reach", path=scope.get("path", ""), error=type(exc).__name__
            )
            if started:
                raise
            await unreachable_response(scope_path(scope))(scope, receive, send_with_headers)
        except Exception as exc:
            log.error(
                "request failed",
                path=scope.get("path", ""),
                error=f"{type(exc).__name__}: {exc}",
                exc=True,
            )
            if started:
                raise
            machine = scope_path(scope).startswith(MACHINE)
            response = (
                Response('{"detail":"internal error"}', 500, media_type="application/json")
                if machine
                else Response(
                    '<p class="error http-error" role="alert"><strong>500</strong> Internal '
                    "error; the details are in the web service's log.</p>",
                    500,
                    media_type="text/html",
                )
                if _htmx(Headers(scope=scope))
                else Response(
                    "<!doctype html><title>500 · Tocsin</title><h1>500</h1>"
                    "<p>Internal error; the details are in the web service's log.</p>",
                    500,
                    media_type="text/html",
                )
            )
            await response(scope, receive, send_with_headers)


class Head:
    """ASGI middleware: HEAD is answered as GET without its body, for every GET route at once
    (uptime monitors and feed readers send HEAD; FastAPI's routes accept only the methods they
    name). The headers, Content-Length included, are the GET's. A stream (``/live``) is ended
    after its headers: the route is told the client left."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        done = False

        async def headers_only(message: Message) -> None:
            nonlocal done
            if done:
                return
            if message["type"] == "http.response.start":
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                done = True

        async def left_after_headers() -> Message:
            if done:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app({**scope, "method": "GET"}, left_after_headers, headers_only)
