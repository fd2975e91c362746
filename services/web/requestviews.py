"""The life of a check request: its status from the read model, and its run's live log.

``GET /api/requests/{id}`` and the request page show where a request is (queued, running on
which agent and since when, completed, judged, dead-lettered, cancelled); the page follows
the agent's log lines of the run over SSE (``/requests/{id}/log``), straight from the core
NATS subject the agent publishes them on: nothing is stored, nothing is lost if nobody
listens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from markupsafe import escape
from pydantic import Field

from events import control, subjects
from services.web import checknow
from services.web.apimodels import ERRORS, NO_NUL, NOT_FOUND, Model
from services.web.auth import api_access, page_access
from services.web.templating import external_path, render

router = APIRouter()
#: Requests listed on a task's page.
RECENT = 20

_SELECT = """
SELECT r.id, r.grp, r.location, r.status, r.requested_at, r.due, r.requested_by, r.agent,
       r.deliveries, r.started_at, r.completed_at, r.completion_seq, r.run_ms, r.error,
       r.judged_at, coalesce(a.received_at, a.last_seen) AS agent_seen,
       extract(epoch FROM r.started_at - r.requested_at) AS queue_wait_s
FROM requests r LEFT JOIN agents a ON a.name = r.agent
"""


async def recent(conn: asyncpg.Connection, group: str, limit: int = RECENT) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _SELECT + " WHERE r.grp = $1 ORDER BY r.updated_seq DESC LIMIT $2", group, limit
    )
    return [dict(r) for r in rows]


async def one(conn: asyncpg.Connection, request_id: str) -> dict[str, Any] | None:
    r = await conn.fetchrow(_SELECT + " WHERE r.id = $1", request_id)
    return dict(r) if r else None


class RequestStatus(Model):
    id: str
    group: str
    location: str
    status: Literal["queued", "running", "completed", "judged", "dead_lettered", "cancelled"]
    requested_at: datetime | None
    due: datetime | None
    requested_by: str | None = Field(description="who asked for a check now; None: schedule")
    agent: str | None = Field(description="the agent running or that ran it")
    deliveries: int
    started_at: datetime | None
    completed_at: datetime | None
    completion_seq: int | None
    run_ms: float | None
    error: str | None
    judged_at: datetime | None
    agent_seen: datetime | None = Field(description="the agent's last heartbeat")
    queue_wait_s: float | None = Field(description="from requested to started")


RequestId = Annotated[str, Path(pattern=NO_NUL, max_length=1000, description="a request's id")]


@router.get(
    "/api/requests/{request_id}",
    tags=["api"],
    summary="One check request: status, agent, deliveries, queue wait, run time, error",
    dependencies=[Depends(api_access)],
    responses={**ERRORS, **NOT_FOUND},
)
async def api_request(request: Request, request_id: RequestId) -> RequestStatus:
    async with request.app.state.pool.acquire() as conn:
        r = await one(conn, request_id)
    if r is None:
        raise HTTPException(404, "no such request (yet: the projector may be behind)")
    wait = r["queue_wait_s"]
    fields = {k: v for k, v in r.items() if k not in ("grp", "queue_wait_s")}
    return RequestStatus(
        group=r["grp"], queue_wait_s=float(wait) if wait is not None else None, **fields
    )


@router.get(
    "/requests/{request_id}",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(page_access())],
)
async def request_page(request: Request, request_id: str) -> HTMLResponse:
    # An id that can never name a request: a 404 saying what an id is, not a page waiting
    # for it (and retrying its run's log) forever.
    try:
        subjects.request_group(request_id)
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from None
    async with request.app.state.pool.acquire() as conn:
        r = await one(conn, request_id)
        tasks = await conn.fetch(
            "SELECT id, url, check_kind FROM tasks WHERE grp = $1 ORDER BY id",
            r["grp"] if r else "",
        )
    return render(
        request,
        "request.html",
        {
            "rid": request_id,
            "r": r,
            "tasks": [dict(t) for t in tasks],
            "self_url": external_path(request),
        },
    )


@router.get(
    "/requests/{request_id}/log",
    include_in_schema=False,
    # Like the API (a session, a token or open mode): scripts may follow a run too.
    dependencies=[Depends(api_access)],
)
async def request_log(request: Request, request_id: str) -> StreamingResponse:
    # Its group goes into the subject followed: a wildcard or a space there would follow every
    # group or none. A group no task has has no run: following it would cost a subscription
    # and a word to every agent for nothing.
    try:
        group = subjects.request_group(request_id)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    async with request.app.state.pool.acquire() as conn:
        known = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tasks WHERE grp = $1)", group)
    if not known:
        raise HTTPException(404, f"no task has the request group {group!r}: no run to follow")
    nc = await checknow.nats_client(request)
    lines = request.app.state.runlogs.stream(nc, request_id)
    return StreamingResponse(
        _frames(lines),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _frames(lines: AsyncIterator[control.LogLine | None]) -> AsyncIterator[str]:
    """SSE: one ``line`` event per log line, an HTML ``<li>`` for htmx's ``sse-swap``."""
    yield "retry: 2000\n\n"
    async for line in lines:
        if line is None:
            yield ": keep-alive\n\n"
            continue
        html = (
            f'<li class="log-{line.step}" data-n="{line.n}" data-step="{line.step}">'
            f'<span class="at">+{line.ms:.0f} ms</span> <span class="step">{line.step}</span> '
            f"{escape(line.text)}</li>"
        )
        # SSE data ends at a newline: the agent sends none, and none gets through.
        yield "event: line\ndata: " + html.replace("\n", " ").replace("\r", " ") + "\n\n"
