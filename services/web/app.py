"""The web service: pages, JSON API, badges, metrics and the live stream, over the read models.

``create_app`` wires the routers; each lives in its own module (pages, api,
auth, badges, metrics) and reads the shared state set up here: the pool, the
live hub, the settings and the session signer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from readmodel import SCHEMA, ensure_schema
from runtime import __version__, db
from services.web import api, auth, authdb, badges, metrics, pages, queries
from services.web.live import Hub
from services.web.settings import WebSettings, load_settings
from services.web.templating import HERE, render

PAGE_SIZE = pages.PAGE_SIZE


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
            database_url, min_size=1, max_size=10, server_settings={"search_path": SCHEMA}
        )
        app.state.hub = Hub(database_url)
        app.state.hub.start()
        app.state.nats = None
        yield
        await app.state.hub.stop()
        await app.state.pool.close()
        if app.state.nats is not None:
            with suppress(Exception):
                await app.state.nats.close()

    app = FastAPI(
        title="Tocsin",
        version=__version__,
        lifespan=lifespan,
        description="Live status, history, agents and audit of a Tocsin installation. "
        "Authenticate with `Authorization: Bearer <token>` (`tocsin token create`).",
    )
    app.state.http_hist = metrics.Histogram()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.middleware("http")(auth.middleware)
    app.middleware("http")(metrics.timing)
    app.add_exception_handler(auth.LoginRequired, auth.login_required_response)  # type: ignore[arg-type]

    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if request.url.path.startswith(("/api/", "/badges/", "/metrics", "/static/")):
            from fastapi.exception_handlers import http_exception_handler

            return await http_exception_handler(request, exc)
        return render(
            request,
            "error.html",
            {"status": exc.status_code, "detail": exc.detail, "live": False},
            status_code=exc.status_code,
        )

    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    for module in (auth, pages, api, badges, metrics):
        app.include_router(module.router)

    @app.get("/live", include_in_schema=False)
    async def live(request: Request) -> StreamingResponse:
        # Open to all: it only says "something changed", never what; each page then
        # fetches its own refresh through its own access check.
        return StreamingResponse(
            request.app.state.hub.stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn:
            pos = await queries.position(conn)
        return {"status": "ok", "projected_seq": pos.get("seq", 0)}

    return app
