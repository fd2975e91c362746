"""Public status pages declared in the configuration, operators' incidents and subscribers.

Pages are public and the same for everyone (no session read, no cookie set, no admin
link), so a proxy may cache them for a minute. Incidents and subscriptions are events in
the log (``status.incident``, ``status.subscriber``): the web publishes them, the projector
folds them into ``status_posts`` and ``status_subscribers``, the notifier mails them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from events import subjects
from events.statuspages import IncidentPhase, StatusIncidentPosted, StatusSubscriber
from events.types import Event
from services.web import atom, eventlog, recent, recording, statusmodel, statusqueries
from services.web.apimodels import ERRORS, NO_NUL, NOT_FOUND, READ_ONLY, Error
from services.web.auth import csrf_ok, operator
from services.web.checknow import NEEDS_CREDENTIALS
from services.web.templating import render, root_path

router = APIRouter(tags=["status pages"])
PHASES = ("investigating", "identified", "monitoring", "resolved")
#: Public pages may be cached this long by browsers and proxies.
CACHE = "public, max-age=60"
DAYS = 90
NO_COMPONENTS = Form([])
#: How long an update waits for its incident's opening post to reach the read model.
PROJECTION_WAIT = 3.0
EMAIL = r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$"


def _page(request: Request, slug: str) -> dict[str, Any]:
    for p in request.app.state.auth.settings.status_pages:
        if p["slug"] == slug:
            return p  # type: ignore[no-any-return]
    raise HTTPException(404, "no such status page")


def page_domains(page: dict[str, Any]) -> set[str]:
    return {d for g in page["groups"] for c in g["components"] for d in c["domains"]}


async def _publish(request: Request, subject: str, event: Event, msg_id: str) -> None:
    data = recording.admitted(event)
    url = request.app.state.auth.settings.nats_url
    if not url:
        raise HTTPException(503, "this web service has no NATS_URL: it cannot record events")
    await eventlog.publish(request.app.state, url, subject, data, msg_id)


async def _view(request: Request, page: dict[str, Any]) -> dict[str, Any]:
    """Everything the page shows, from the read models."""
    now = dt.datetime.now(dt.UTC)
    ids = sorted({t for g in page["groups"] for c in g["components"] for t in c["tasks"]})
    settings = request.app.state.auth.settings
    async with request.app.state.pool.acquire() as conn:
        severity = await statusqueries.severities(conn, ids)
        changes = await recent.changes_since(conn, ids, now - dt.timedelta(days=DAYS))
        posts = await statusqueries.status_posts(conn, page["slug"])
    windows = settings.maintenance
    groups = []
    for g in page["groups"]:
        comps = []
        for c in g["components"]:
            in_force = [
                w
                for d in ["", *c["domains"]]
                for w in statusmodel.upcoming(windows.get(d, []), now, dt.timedelta(0))
            ]
            days = statusmodel.daily({t: changes.get(t, []) for t in c["tasks"]}, now, DAYS)
            comps.append(
                {
                    "name": c["name"],
                    "state": statusmodel.component_state(
                        [severity.get(t, "pending") for t in c["tasks"]], bool(in_force)
                    ),
                    "days": days,
                    "uptime": statusmodel.uptime(days),
                }
            )
        groups.append(
            {
                "name": g["name"],
                "components": comps,
                "state": statusmodel.overall([c["state"] for c in comps]),
            }
        )
    state = statusmodel.overall([c["state"] for g in groups for c in g["components"]])
    domains = ["", *sorted(page_domains(page))]
    maintenance = sorted(
        {m for d in domains for m in statusmodel.upcoming(windows.get(d, []), now)}
    )
    incidents = statusmodel.incidents(posts)
    return {
        "page": page,
        "groups": groups,
        "state": state,
        "headline": statusmodel.HEADLINES[state],
        "maintenance": maintenance,
        "open": [i for i in incidents if i["phase"] != "resolved"],
        "past": [i for i in incidents if i["phase"] == "resolved"][:20],
        "now": now,
        "days": DAYS,
        "mail": settings.mail_subscriptions,
        "live": False,
    }


@router.get("/status", response_class=HTMLResponse, include_in_schema=False)
async def status_index(request: Request) -> Response:
    pages = request.app.state.auth.settings.status_pages
    if len(pages) == 1:
        return RedirectResponse(f"{root_path(request)}/status/{pages[0]['slug']}", status_code=307)
    response = render(request, "status_index.html", {"pages": pages, "live": False})
    response.headers["Cache-Control"] = CACHE
    return response


@router.get("/status/{slug}", response_class=HTMLResponse, include_in_schema=False)
async def status_page(request: Request, slug: str) -> Response:
    page = _page(request, slug)
    ctx = await _view(request, page)
    ctx["subscribed"] = request.query_params.get("subscribed", "")
    response = render(request, "status.html", ctx)
    response.headers["Cache-Control"] = CACHE
    return response


@router.get("/status/{slug}/feed.atom", include_in_schema=False)
async def status_feed(request: Request, slug: str) -> Response:
    page = _page(request, slug)
    async with request.app.state.pool.acquire() as conn:
        posts = await statusqueries.status_posts(conn, slug)
    base = str(request.base_url).rstrip("/")
    body = atom.feed(page, statusmodel.incidents(posts), base)
    return Response(body, media_type="application/atom+xml", headers={"Cache-Control": CACHE})


# Operators' incidents ------------------------------------------------------------------


Slug = Annotated[str, PathParam(pattern=NO_NUL, max_length=64, description="a page's slug")]
IncidentId = Annotated[str, PathParam(pattern=NO_NUL, max_length=64, description="an id")]
#: What writing an incident may answer besides 200.
WRITE_ERRORS: dict[int | str, dict[str, Any]] = (
    ERRORS
    | NOT_FOUND
    | READ_ONLY
    | {503: {"model": Error, "description": "this web service has no NATS_URL to record it"}}
)


class IncidentIn(BaseModel):
    title: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    message: str = Field(min_length=1, max_length=5000, pattern=NO_NUL)
    phase: IncidentPhase = "investigating"
    components: list[Annotated[str, Field(max_length=200, pattern=NO_NUL)]] = Field(
        default=[], max_length=100
    )


class UpdateIn(BaseModel):
    message: str = Field(min_length=1, max_length=5000, pattern=NO_NUL)
    phase: IncidentPhase


class Posted(BaseModel):
    id: str
    page: str
    phase: str


def _components(page: dict[str, Any], names: list[str]) -> list[str]:
    known = {c["name"] for g in page["groups"] for c in g["components"]}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise HTTPException(
            422, f"no component {', '.join(map(repr, unknown))} on page {page['slug']!r}"
        )
    return names


async def _known(request: Request, page: str, incident: str) -> bool:
    """Whether the incident was opened; an update may follow its opening by milliseconds,
    before the projector folded it, so the read model gets a few seconds to catch up."""
    deadline = time.monotonic() + PROJECTION_WAIT
    while True:
        async with request.app.state.pool.acquire() as conn:
            if await statusqueries.status_posts(conn, page, incident):
                return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)


async def post_incident(
    request: Request,
    page: dict[str, Any],
    by: str,
    phase: str,
    message: str,
    title: str = "",
    components: list[str] | None = None,
    incident: str | None = None,
) -> str:
    if incident is not None and not await _known(request, page["slug"], incident):
        raise HTTPException(404, f"no incident {incident!r} on page {page['slug']!r}")
    iid = incident or uuid.uuid4().hex[:12]
    ev = StatusIncidentPosted(
        at=time.time(),
        id=iid,
        page=page["slug"],
        phase=phase,  # type: ignore[arg-type]
        message=message,
        by=by,
        title=title,
        components=_components(page, components or []),
    )
    await _publish(
        request, subjects.status("incident", page["slug"]), ev, f"status.incident.{uuid.uuid4()}"
    )
    return iid


@router.post(
    "/api/status/{slug}/incidents",
    summary="Open an incident on a status page",
    responses=WRITE_ERRORS,
    openapi_extra={NEEDS_CREDENTIALS: True},
)
async def api_open(
    request: Request, slug: Slug, body: IncidentIn, by: str = Depends(operator)
) -> Posted:
    page = _page(request, slug)
    iid = await post_incident(
        request, page, by, body.phase, body.message, body.title, body.components
    )
    return Posted(id=iid, page=slug, phase=body.phase)


@router.post(
    "/api/status/{slug}/incidents/{incident}",
    summary="Post an update of an incident",
    responses=WRITE_ERRORS,
    openapi_extra={NEEDS_CREDENTIALS: True},
)
async def api_update(
    request: Request,
    slug: Slug,
    incident: IncidentId,
    body: UpdateIn,
    by: str = Depends(operator),
) -> Posted:
    page = _page(request, slug)
    await post_incident(request, page, by, body.phase, body.message, incident=incident)
    return Posted(id=incident, page=slug, phase=body.phase)


@router.get("/status/{slug}/incidents", response_class=HTMLResponse, include_in_schema=False)
async def incident_form(request: Request, slug: str, by: str = Depends(operator)) -> Response:
    page = _page(request, slug)
    async with request.app.state.pool.acquire() as conn:
        posts = await statusqueries.status_posts(conn, slug)
    return render(
        request,
        "status_incidents.html",
        {
            "page": page,
            "incidents": statusmodel.incidents(posts),
            "phases": PHASES,
            "components": [c["name"] for g in page["groups"] for c in g["components"]],
            "self_url": request.url.path,
        },
    )


@router.post("/status/{slug}/incidents", include_in_schema=False)
async def incident_post(
    request: Request,
    slug: str,
    by: str = Depends(operator),
    message: str = Form(...),
    phase: str = Form("investigating"),
    title: str = Form(""),
    incident: str = Form(""),
    components: list[str] = NO_COMPONENTS,
    csrf_token: str = Form(""),
) -> Response:
    page = _page(request, slug)
    if not csrf_ok(request, csrf_token):
        raise HTTPException(403, "The form expired; please try again.")
    if phase not in PHASES:
        raise HTTPException(422, f"phase must be one of {', '.join(PHASES)}")
    if not incident and not title.strip():
        raise HTTPException(422, "a new incident needs a title")
    if not message.strip():
        raise HTTPException(422, "the message is empty")
    await post_incident(
        request, page, by, phase, message.strip(), title.strip(), components, incident or None
    )
    return RedirectResponse(f"{root_path(request)}/status/{slug}/incidents", status_code=303)


# Subscribers ---------------------------------------------------------------------------


@router.post("/status/{slug}/subscribe", include_in_schema=False)
async def subscribe(request: Request, slug: str, email: str = Form(...)) -> Response:
    """Double opt-in, step one: record the request; the notifier mails the confirmation
    link. No CSRF token here: the page stays cookie-free (cacheable), and nothing happens
    until the mailbox's owner opens the link."""
    page = _page(request, slug)
    if not request.app.state.auth.settings.mail_subscriptions:
        raise HTTPException(404, "this installation sends no mail: follow the Atom feed")
    email = email.strip()
    if not re.match(EMAIL, email) or len(email) > 254:
        raise HTTPException(422, f"not an e-mail address: {email!r}")
    ev = StatusSubscriber(
        at=time.time(),
        page=page["slug"],
        email=email,
        state="requested",
        token=secrets.token_urlsafe(24),
    )
    await _publish(
        request, subjects.status("subscriber", slug), ev, f"status.subscriber.{uuid.uuid4()}"
    )
    return RedirectResponse(
        f"{root_path(request)}/status/{slug}?subscribed=check-mail", status_code=303
    )


@router.get("/status/{slug}/confirm", response_class=HTMLResponse, include_in_schema=False)
async def confirm_form(request: Request, slug: str, token: str = "") -> Response:
    """Step two shows a button rather than confirming on GET: mail scanners open links."""
    page = _page(request, slug)
    return render(request, "status_confirm.html", {"page": page, "token": token, "live": False})


@router.post("/status/{slug}/confirm", include_in_schema=False)
async def confirm(request: Request, slug: str, token: str = Form("")) -> Response:
    page = _page(request, slug)
    async with request.app.state.pool.acquire() as conn:
        sub = await statusqueries.subscriber_by_token(conn, slug, token) if token else None
    if sub is None:
        raise HTTPException(404, "this confirmation link is unknown or was already used")
    ev = StatusSubscriber(at=time.time(), page=slug, email=sub["email"], state="confirmed")
    await _publish(
        request, subjects.status("subscriber", slug), ev, f"status.subscriber.{uuid.uuid4()}"
    )
    return RedirectResponse(
        f"{root_path(request)}/status/{page['slug']}?subscribed=confirmed", status_code=303
    )
