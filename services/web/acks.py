"""Acknowledging an incident from the web: a button on the task page (htmx, no script of
ours) and ``POST /api/tasks/{id}/acknowledge``. Either records an ``incident.acknowledged``
event in the log, naming who (the logged-in user, or ``token:<name>``) and why; the
notifier then stops reminders and escalation for that episode.

An acknowledgement always names someone: ``unauthenticated_access`` opens pages to
reading, never to this.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from markupsafe import escape
from pydantic import Field

from events import subjects
from events.types import IncidentAcknowledged
from services.web import eventlog, queries, recording
from services.web.apimodels import ERRORS, NOT_FOUND, READ_ONLY, Error, Model, TaskId
from services.web.auth import api_token, bearer, csrf_ok, current_user, session_cookie
from services.web.templating import root_path

router = APIRouter()
MAX_REASON = 500
#: Marks an operation that needs an identity even under ``unauthenticated_access: all``
#: (app.py keeps its 401 and security schemes in /openapi.json).
NEEDS_IDENTITY = "x-tocsin-needs-identity"


class AckBody(Model):
    # ``\S`` alone matched a NUL (not a space): one character neither NUL nor space.
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")


class Acknowledged(Model):
    task: str
    by: str
    reason: str
    severity: str | None
    at: float


async def _identified(
    request: Request,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _session: Annotated[str | None, Depends(session_cookie)],
) -> None:
    """Declares the API's two security schemes; ``acknowledge`` checks who it is."""


async def _who(request: Request) -> str | None:
    user = await current_user(request)
    if user is not None:
        return user.name
    token = await api_token(request)
    return None if token is None else f"token:{token.name}"


async def _identity(request: Request) -> str:
    by = await _who(request)
    if by is None:
        raise HTTPException(
            401, "log in (or use an API token) to acknowledge", {"WWW-Authenticate": "Bearer"}
        )
    return by


async def acknowledge(request: Request, task_id: str, reason: str) -> IncidentAcknowledged:
    by = await _identity(request)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise HTTPException(422, f"say why, in 1 to {MAX_REASON} characters")
    async with request.app.state.pool.acquire() as conn:
        task = await queries.task(conn, task_id)
    if task is None:
        raise HTTPException(404, "no such task")
    if task["severity"] in ("ok", "pending"):
        raise HTTPException(409, f"the task is {task['severity']}: nothing to acknowledge")
    ev = IncidentAcknowledged(
        at=time.time(), task=task_id, by=by, reason=reason, severity=task["severity"]
    )
    data = recording.admitted(ev)
    url = request.app.state.auth.settings.nats_url
    if not url:
        # A choice of the installation, not an outage: no 5xx for what retrying never fixes.
        raise HTTPException(
            409, "acknowledgements need the event log: this web service has no NATS_URL"
        )
    msg_id = f"ack.{task_id}.{uuid.uuid4().hex}"
    await eventlog.publish(request.app.state, url, subjects.ACKNOWLEDGED, data, msg_id)
    return ev


@router.post(
    "/api/tasks/{task_id}/acknowledge",
    tags=["api"],
    summary="Acknowledge a task's incident: reminders and escalation stop until it changes",
    dependencies=[Depends(_identified)],
    responses={
        **ERRORS,
        **NOT_FOUND,
        **READ_ONLY,
        409: {
            "model": Error,
            "description": "the task is ok or not judged yet, or this web service has no NATS_URL",
        },
        503: {"model": Error, "description": "the event log (NATS) is unreachable"},
    },
    openapi_extra={NEEDS_IDENTITY: True},
)
async def api_acknowledge(request: Request, task_id: TaskId, body: AckBody) -> Acknowledged:
    ev = await acknowledge(request, task_id, body.reason)
    return Acknowledged(task=ev.task, by=ev.by, reason=ev.reason, severity=ev.severity, at=ev.at)


@router.post("/tasks/{task_id}/acknowledge", include_in_schema=False)
async def form_acknowledge(
    request: Request, task_id: str, reason: str = Form(""), csrf_token: str = Form("")
) -> Response:
    if not csrf_ok(request, csrf_token):
        raise HTTPException(403, "the form expired: reload the page")
    ev = await acknowledge(request, task_id, reason)
    if request.headers.get("hx-request") != "true":
        return RedirectResponse(f"{root_path(request)}/tasks/{task_id}", status_code=303)
    return HTMLResponse(
        f'<p id="ack" class="acknowledged">Acknowledged by {escape(ev.by)}: '
        f"{escape(ev.reason)}. Reminders and escalation stop until the severity changes.</p>"
    )
