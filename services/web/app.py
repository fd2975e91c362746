"""The web service: dashboard, JSON API and the live stream, reading the read models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services import __version__
from services.common import db
from services.projector.service import SCHEMA, ensure_schema
from services.web import queries
from services.web.live import Hub

HERE = Path(__file__).parent
PAGE_SIZE = 200


def _ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = (datetime.now(UTC) - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{seconds / size:.0f}{unit}"
            break
    else:
        text = f"{seconds:.0f}s"
    return f"in {text}" if future else f"{text} ago"


def create_app(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conn = await db.connect(database_url)
        await ensure_schema(conn)
        await conn.close()
        app.state.pool = await db.pool(database_url, min_size=1, max_size=10,
                                       server_settings={"search_path": SCHEMA})
        app.state.hub = Hub(database_url)
        app.state.hub.start()
        yield
        await app.state.hub.stop()
        await app.state.pool.close()

    app = FastAPI(title="Tocsin", version=__version__, lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["ago"] = _ago
    templates.env.filters["tojson_compact"] = lambda v: json.dumps(v, separators=(",", ":"))

    def pool(request: Request) -> asyncpg.Pool:
        return request.app.state.pool  # type: ignore[no-any-return]

    async def _listing(request: Request, q: str, severity: str, page: int) -> dict[str, Any]:
        async with pool(request).acquire() as conn:
            rows = await queries.tasks(conn, q, severity, PAGE_SIZE, (page - 1) * PAGE_SIZE)
            return {
                "request": request, "rows": rows, "counts": await queries.counts(conn),
                "total": await queries.total(conn, q, severity), "q": q, "severity": severity,
                "page": page, "page_size": PAGE_SIZE,
            }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(request: Request, q: str = "", severity: str = "",
                        page: int = Query(1, ge=1)) -> HTMLResponse:
        ctx = await _listing(request, q, severity, page)
        return templates.TemplateResponse(request, "dashboard.html", ctx)

    @app.get("/partials/tasks", response_class=HTMLResponse, include_in_schema=False)
    async def tasks_partial(request: Request, q: str = "", severity: str = "",
                            page: int = Query(1, ge=1)) -> HTMLResponse:
        ctx = await _listing(request, q, severity, page)
        return templates.TemplateResponse(request, "_tasks.html", ctx)

    @app.get("/live", include_in_schema=False)
    async def live(request: Request) -> StreamingResponse:
        return StreamingResponse(request.app.state.hub.stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/tasks", summary="Tasks with their current severity and last result")
    async def api_tasks(request: Request, q: str = "", severity: str = "",
                        limit: int = Query(1000, ge=1, le=10000), offset: int = Query(0, ge=0)
                        ) -> list[dict[str, Any]]:
        async with pool(request).acquire() as conn:
            rows = await queries.tasks(conn, q, severity, limit, offset)
        return [_task_json(r) for r in rows]

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> dict[str, Any]:
        async with pool(request).acquire() as conn:
            pos = await queries.position(conn)
        return {"status": "ok", "projected_seq": pos.get("seq", 0)}

    return app


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _task_json(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"], "domain": r["domain"], "url": r["url"], "method": r["method"],
        "ip_version": r["ip_version"], "check": r["check"],
        "expected": json.loads(r["expected"]) if r["expected"] is not None else None,
        "frequency": r["frequency"], "severity": r["severity"],
        "severity_since": _iso(r["severity_since"]), "reason": r["reason"],
        "last_status": r["last_status"], "last_detail": r["last_detail"],
        "last_checked_at": _iso(r["last_checked_at"]), "http_status": r["http_status"],
        "response_ms": r["response_ms"], "next_run": _iso(r["next_run"]),
        "agent": r["last_agent"],
    }
