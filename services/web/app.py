"""The web service: pages, JSON API, badges, metrics and the live stream, over the read models.

``create_app`` wires the routers; each lives in its own module (pages, api,
auth, badges, metrics) and reads the shared state set up here: the pool, the
live hub, the settings and the session signer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException

from readmodel import SCHEMA, ensure_schema
from runtime import __version__, db
from services.web import (
    acks,
    api,
    argosapp,
    auth,
    authdb,
    badges,
    bodylimit,
    checknow,
    edges,
    hosts,
    metrics,
    pages,
    ping,
    queries,
    requestviews,
    staleness,
    statuspages,
)
from services.web.following import follow_config
from services.web.live import Hub
from services.web.runlogs import RunLogs
from services.web.settings import WebSettings, load_settings
from services.web.templating import HERE, render

PAGE_SIZE = pages.PAGE_SIZE


class UnderPrefix:
    """ASGI wants ``path`` to include ``root_path``: a proxy that cut the prefix
    (``proxy_pass http://tocsin/;``) gets it put back, so routing, static files and links
    work the same behind either kind of proxy."""

    def __init__(self, app: Any, prefix: str) -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope["path"]
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                path = self.prefix + path
            scope = {**scope, "path": path, "root_path": self.prefix}
        await self.app(scope, receive, send)


def create_app(database_url: str, settings: WebSettings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conn = await db.connect(database_url)
        try:
            await ensure_schema(conn)
            await authdb.ensure(conn)
            secret = settings.cookie_secret or await authdb.cookie_secret(conn)
        finally:
            await conn.close()
        app.state.auth = auth.Auth(settings, secret)
        app.state.pool = await db.pool(
            database_url,
            min_size=1,
            max_size=10,
            server_settings={"search_path": SCHEMA},
            connect=edges.connect_or_unreachable,
        )
        app.state.hub = Hub(database_url)
        app.state.hub.start()
        app.state.nats = None
        app.state.ping_rate = ping.RateLimit()
        app.state.nats_lock = asyncio.Lock()  # one connection, opened at its first use
        app.state.runlogs = RunLogs()
        following = (
            asyncio.create_task(follow_config(app.state, settings)) if settings.nats_url else None
        )
        yield
        if following is not None:
            following.cancel()
            with suppress(asyncio.CancelledError):
                await following
        await app.state.runlogs.close()
        await app.state.hub.stop()
        await app.state.pool.close()
        if app.state.nats is not None:
            with suppress(Exception):
                await app.state.nats.close()

    app = FastAPI(
        title="Tocsin",
        version=__version__,
        lifespan=lifespan,
        # /docs is served below from vendored assets; FastAPI's own pages load them from a CDN.
        docs_url=None,
        redoc_url=None,
        description="Live status, history, agents and audit of a Tocsin installation. "
        "Authenticate with `Authorization: Bearer <token>` (`tocsin token create`).",
        dependencies=[Depends(edges.reject_nul)],
    )
    app.state.metrics_registry = CollectorRegistry(auto_describe=True)
    app.state.watching_since = time.monotonic()  # silence before it is not the web's to judge
    app.state.recent_history = pages.RecentHistory()
    app.state.http_hist = metrics.http_histogram(app.state.metrics_registry)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # Innermost: a write's caller is known before anything reads its body.
    app.add_middleware(bodylimit.CredentialsFirst)  # type: ignore[arg-type]
    app.middleware("http")(auth.middleware)
    app.middleware("http")(metrics.timing)
    app.add_exception_handler(auth.LoginRequired, auth.login_required_response)  # type: ignore[arg-type]

    app.add_exception_handler(StarletteHTTPException, edges.http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, edges.validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(asyncpg.DataError, edges.data_error)  # type: ignore[arg-type]
    # A ping's body is kept before anything parses it (services/web/ping.py).
    app.add_middleware(ping.KeepBody)  # type: ignore[arg-type]
    # Before anything reads a body (the NUL guard parses forms before any route's check).
    app.add_middleware(bodylimit.BodyLimit, machine=edges.MACHINE)  # type: ignore[arg-type]
    # Added last, so outermost: its headers reach every response, errors included.
    app.add_middleware(edges.Edges)  # type: ignore[arg-type]
    app.add_middleware(edges.Head)  # type: ignore[arg-type]
    if settings.root_path:
        # Outermost: routing, static files and every page see the path with its prefix.
        app.add_middleware(UnderPrefix, prefix=settings.root_path)
    for module in (
        auth,
        pages,
        api,
        argosapp,
        acks,
        checknow,
        requestviews,
        badges,
        metrics,
        hosts,
        ping,
        statuspages,
    ):
        app.include_router(module.router)
    app.include_router(hosts.api)
    app.include_router(argosapp.version_router)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]

    @app.get("/live", include_in_schema=False)
    async def live(request: Request) -> StreamingResponse:
        # Open to all: it only says "something changed", never what; each page then
        # fetches its own refresh through its own access check.
        return StreamingResponse(
            request.app.state.hub.stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Any:
        return render(request, "docs.html", {"openapi_url": app.openapi_url, "live": False})

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> Any:
        try:
            async with request.app.state.pool.acquire() as conn:
                pos = await queries.position(conn)
                fresh = await staleness.freshness(conn, request.app.state)
        except edges.UNREACHABLE:
            return JSONResponse(
                {"status": "unavailable", "down": ["database"], "detail": edges.UNREACHABLE_DETAIL},
                503,
                headers={"Retry-After": str(edges.RETRY_AFTER)},
            )
        body = {
            "status": "stale" if fresh.stale else "ok",
            "projected_seq": pos.get("seq", 0),
            "last_result_age": fresh.age,
            "stale_after": fresh.stale_after,
        }
        if fresh.stale:
            # Nothing checked for far longer than the most frequent task: a watchdog's alarm
            # (a scheduler that stopped dispatching, no agent running).
            return JSONResponse({**body, "down": ["checks"]}, 503)
        return body

    return app


def _openapi(app: FastAPI, settings: WebSettings) -> dict[str, Any]:
    """The schema as this installation serves it: with ``unauthenticated_access: all`` the
    API asks for no credentials, so it declares none (nor a 401), except where an operation
    acts (``x-needs-credentials``: "check now" needs a user or a write token even then)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        if settings.unauthenticated_access == "all":
            for path in schema["paths"].values():
                for operation in path.values():
                    if operation.get(checknow.NEEDS_CREDENTIALS) or operation.get(
                        acks.NEEDS_IDENTITY
                    ):
                        continue  # acting (check now, an acknowledgement) always names someone
                    operation.pop("security", None)
                    operation.get("responses", {}).pop("401", None)
            if not any(
                op.get(checknow.NEEDS_CREDENTIALS) or op.get(acks.NEEDS_IDENTITY)
                for p in schema["paths"].values()
                for op in p.values()
            ):
                schema.get("components", {}).pop("securitySchemes", None)
        app.openapi_schema = schema
    return app.openapi_schema
