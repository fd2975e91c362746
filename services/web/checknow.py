"""Check now from the web: a button on the task and domain pages, and the API for scripts.

The web asks the scheduler in charge (``checks.request.ask_now``), which builds the requests
with the task definitions it holds (secrets included) and publishes them. Only a logged-in
user (with the form's CSRF token) or a write-scoped API token may ask; the request event
records who did.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from nats.aio.client import Client

from checks import request as checkrequest
from events import control
from services.web import auth, eventlog
from services.web.apimodels import ERRORS, NO_NUL, Error, Model, TaskId
from services.web.templating import templates

router = APIRouter(tags=["check now"])


DomainName = Annotated[str, Path(pattern=NO_NUL, max_length=1000, description="a domain")]


class AskedRequest(Model):
    request: str
    group: str
    location: str
    queued: bool


class CheckNowAnswer(Model):
    requests: list[AskedRequest]


#: An operation that needs credentials even with ``unauthenticated_access: all``.
NEEDS_CREDENTIALS = "x-needs-credentials"

ASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"model": CheckNowAnswer, "description": "every request was asked already (rate limit)"},
    202: {"model": CheckNowAnswer, "description": "queued"},
    403: {"model": Error, "description": "a read-only token, or a session without CSRF token"},
    404: {"model": Error, "description": "no such task or domain in the configuration in force"},
    409: {"model": Error, "description": "a heartbeat monitor: its pings judge it, nothing to run"},
    503: {"model": Error, "description": "no NATS, or no scheduler in charge"},
}


async def write_access(
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(auth.bearer)],
    _session: Annotated[str | None, Depends(auth.session_cookie)],
) -> None:
    """Declares the security schemes in /openapi.json; ``actor`` checks the request."""


async def actor(request: Request, csrf: str) -> str:
    """Who may act, as the request event records it; refuses anyone else."""
    token = await auth.api_token(request)
    if token is not None:  # a write token: the write guard refused any other (bodylimit.py)
        return f"token:{token.name}"
    user = await auth.current_user(request)
    if user is None:
        raise auth.LoginRequired(api=request.url.path.startswith("/api/"))
    if not auth.csrf_ok(request, csrf):
        raise HTTPException(403, "missing or stale CSRF token; reload the page")
    return f"user:{user.name}"


async def nats_client(request: Request) -> Client:
    """The web's NATS connection, connected (``eventlog.connected``: a 503 saying why
    otherwise, within seconds)."""
    url = request.app.state.auth.settings.nats_url
    if not url:
        raise HTTPException(503, "check now needs NATS: set NATS_URL for the web service")
    return await eventlog.connected(request.app.state, url)


async def ask(request: Request, csrf: str, task: str | None, domain: str | None) -> list[Any]:
    by = await actor(request, csrf)
    nc = await nats_client(request)
    # Follow the runs' log lines before they start: a request page opened afterwards shows
    # the whole run.
    async with request.app.state.pool.acquire() as conn:
        groups = await conn.fetch(
            "SELECT DISTINCT grp FROM tasks WHERE removed_at IS NULL AND (id = $1 OR domain = $2)",
            task or "",
            domain or "",
        )
    for g in groups:
        await request.app.state.runlogs.follow(nc, g["grp"])
    try:
        asked = await checkrequest.ask_now(nc, control.CheckNow(by=by, task=task, domain=domain))
    except checkrequest.CheckNowError as exc:
        raise HTTPException(404 if exc.unknown else 409 if exc.refused else 503, str(exc)) from None
    return asked


def _json(asked: list[control.Asked]) -> JSONResponse:
    body = {"requests": [{f: getattr(a, f) for f in a.__struct_fields__} for a in asked]}
    # 202: something new is queued; 200: every request was queued already (rate limit).
    return JSONResponse(body, status_code=202 if any(a.queued for a in asked) else 200)


@router.post(
    "/api/tasks/{task_id}/check",
    summary="Run a task now (a write token, or a session with X-CSRF-Token)",
    status_code=202,
    responses=ASK_RESPONSES,
    response_model=CheckNowAnswer,
    dependencies=[Depends(write_access)],
    openapi_extra={NEEDS_CREDENTIALS: True},
)
async def api_check_task(request: Request, task_id: TaskId) -> JSONResponse:
    return _json(await ask(request, request.headers.get("x-csrf-token", ""), task_id, None))


@router.post(
    "/api/domains/{domain:path}/check",
    summary="Run every task of a domain now",
    status_code=202,
    responses=ASK_RESPONSES,
    response_model=CheckNowAnswer,
    dependencies=[Depends(write_access)],
    openapi_extra={NEEDS_CREDENTIALS: True},
)
async def api_check_domain(request: Request, domain: DomainName) -> JSONResponse:
    return _json(await ask(request, request.headers.get("x-csrf-token", ""), None, domain))


def _partial(request: Request, asked: list[control.Asked]) -> HTMLResponse:
    return templates.TemplateResponse(request, "_checknow.html", {"asked": asked})


@router.post("/tasks/{task_id}/check", include_in_schema=False)
async def page_check_task(
    request: Request, task_id: str, csrf_token: str = Form("")
) -> HTMLResponse:
    return _partial(request, await ask(request, csrf_token, task_id, None))


@router.post("/domains/{domain:path}/check", include_in_schema=False)
async def page_check_domain(
    request: Request, domain: str, csrf_token: str = Form("")
) -> HTMLResponse:
    return _partial(request, await ask(request, csrf_token, None, domain))
