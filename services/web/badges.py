"""SVG badges (status, uptime, response time) per task and domain.

Public, so they only show what the operator published: the domains of the configured
status pages and those listed in TOCSIN_STATUS_PAGE (``*`` for all), or everything to a
logged-in user or when ``unauthenticated_access`` is ``all``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response
from markupsafe import escape

from services.web import queries
from services.web.apimodels import ERRORS, NO_NUL, Error
from services.web.auth import current_user
from services.web.statuspages import page_domains

# Badges are public (what is not published is a 404): no credentials, no 401.
router = APIRouter(tags=["badges"], responses={k: v for k, v in ERRORS.items() if k != 401})

COLOURS = {
    "ok": "#1a7f37",
    "warning": "#bf8700",
    "critical": "#cf222e",
    "unknown": "#6e40c9",
    "pending": "#6e7781",
    "up": "#1a7f37",
    "degraded": "#bf8700",
    "down": "#cf222e",
}
STATE = {
    "ok": "up",
    "warning": "degraded",
    "unknown": "degraded",
    "critical": "down",
    "pending": "pending",
}
Kind = Literal["status", "uptime-24h", "uptime-7d", "uptime-30d", "response"]
SVG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}, "description": "a badge"},
    404: {"model": Error, "description": "no such task or domain, or not published"},
}
Name = Annotated[str, Path(pattern=NO_NUL, max_length=1000)]


def _published(request: Request, domain: str) -> bool:
    settings = request.app.state.auth.settings
    domains = settings.status_domains
    on_pages = any(domain in page_domains(p) for p in settings.status_pages)
    return "*" in domains or domain in domains or on_pages


async def _may_see(request: Request, domain: str) -> bool:
    if _published(request, domain):
        return True
    if request.app.state.auth.settings.unauthenticated_access == "all":
        return True
    return await current_user(request) is not None


def _width(text: str) -> int:
    return 7 * len(text) + 10  # Verdana 11px averages ~7 px per character


def badge(label: str, value: str, colour: str) -> str:
    lw, vw = _width(label), _width(value)
    label, value = str(escape(label)), str(escape(value))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lw + vw}" height="20" role="img" '
        f'aria-label="{label}: {value}"><title>{label}: {value}</title>'
        f'<rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{vw}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" '
        f'text-anchor="middle"><text x="{lw / 2}" y="14">{label}</text>'
        f'<text x="{lw + vw / 2}" y="14">{value}</text></g></svg>'
    )


async def _badge(
    request: Request, kind: str, ids: list[str], worst: str, response_ms: float | None
) -> Response:
    if kind == "status":
        text, colour = STATE[worst], COLOURS[worst]
        svg = badge("status", text, colour)
    elif kind.startswith("uptime-"):
        span = kind.removeprefix("uptime-")
        async with request.app.state.pool.acquire() as conn:
            value = (await queries.uptime(conn, ids))[span]
        colour = (
            "#6e7781"
            if value is None
            else COLOURS["ok"]
            if value >= 99
            else COLOURS["warning"]
            if value >= 95
            else COLOURS["critical"]
        )
        svg = badge(f"uptime {span}", "—" if value is None else f"{value:.2f}%", colour)
    else:
        text = "—" if response_ms is None else f"{response_ms:.0f} ms"
        svg = badge("response time", text, "#0969da")
    # Short cache: badges sit in READMEs and status pages, fetched often.
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=30"})


@router.get(
    "/badges/task/{task_id}/{kind}.svg",
    summary="A badge for one task",
    response_class=Response,
    responses=SVG,
)
async def task_badge(request: Request, task_id: Name, kind: Kind) -> Response:
    async with request.app.state.pool.acquire() as conn:
        t = await queries.task(conn, task_id)
    if t is None or not await _may_see(request, t["domain"]):
        raise HTTPException(404, "no such task")
    return await _badge(request, kind, [task_id], t["severity"], t["response_ms"])


@router.get(
    "/badges/domain/{domain}/{kind}.svg",
    summary="A badge for one domain",
    response_class=Response,
    responses=SVG,
)
async def domain_badge(request: Request, domain: Name, kind: Kind) -> Response:
    if not await _may_see(request, domain):
        raise HTTPException(404, "no such domain")
    async with request.app.state.pool.acquire() as conn:
        rows = await queries.domains(conn, names=[domain], limit=1)
        ids = await queries.domain_tasks(conn, domain)
    if not rows:
        raise HTTPException(404, "no such domain")
    return await _badge(request, kind, ids, rows[0]["severity"], rows[0]["response_ms"])
