"""The operator's pages: dashboard, domain, task, result, agents and audit.

Each view gathers its rows and renders a template; htmx refreshes (on each
projector commit, via SSE) get only the page's ``live`` block.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse

from services.web import queries, requestviews
from services.web.auth import page_access
from services.web.blocked import blocked_by
from services.web.charts import SPANS, response_chart
from services.web.edges import BIGINT_MAX, PAGE_MAX, parse_instant
from services.web.templating import external_path, render, root_path

PAGE_SIZE = 100
RESULTS_PAGE = 50
#: An agent silent for longer than this (three missed heartbeats) is shown as lost.
AGENT_LOST_AFTER = 35.0

router = APIRouter(include_in_schema=False)
dashboard_access = Depends(page_access(("dashboard", "all")))
page = Depends(page_access())


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


def self_url(request: Request) -> str:
    return external_path(request)


@router.get("/", response_class=HTMLResponse, dependencies=[dashboard_access])
async def dashboard(
    request: Request, q: str = "", severity: str = "", page: int = Query(1, ge=1, le=PAGE_MAX)
) -> HTMLResponse:
    if severity and severity not in queries.SEVERITIES:
        severity = ""
    async with pool(request).acquire() as conn:
        rows = await queries.tasks(conn, q, severity, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        counts = await queries.counts(conn, q)
    total = rows[0]["total"] if rows else 0
    return render(
        request,
        "dashboard.html",
        {
            "rows": rows,
            "counts": counts,
            "total": total,
            "q": q,
            "severity": severity,
            "page": page,
            "page_size": PAGE_SIZE,
            "self_url": self_url(request),
            "link": lambda **kw: (
                f"{root_path(request)}/?"
                + urlencode({"q": q, "severity": severity, "page": page} | kw)
            ),
        },
    )


async def _history(
    conn: asyncpg.Connection, ids: list[str], span: str, before: int | None, before_task: str | None
) -> dict[str, Any]:
    width = SPANS.get(span, SPANS["24h"])
    now = datetime.now(UTC)
    points = await queries.series(conn, ids, width)
    results = await queries.results(conn, ids, RESULTS_PAGE + 1, before, before_task=before_task)
    return {
        "uptime": await queries.uptime(conn, ids),
        "chart": response_chart(points, now, width),
        "span": span if span in SPANS else "24h",
        "spans": list(SPANS),
        "results": results[:RESULTS_PAGE],
        "more": results[RESULTS_PAGE - 1] if len(results) > RESULTS_PAGE else None,
        "incidents": await queries.incidents(conn, ids, limit=20),
        "before": before,
    }


@router.get("/domains/{domain}", response_class=HTMLResponse, dependencies=[page])
async def domain_page(
    request: Request,
    domain: str,
    span: str = "24h",
    before: int | None = Query(None, ge=0, le=BIGINT_MAX),
    before_task: str | None = None,
) -> HTMLResponse:
    async with pool(request).acquire() as conn:
        rows = await queries.tasks(conn, limit=500, domain=domain)
        if not rows:
            raise HTTPException(404, "no such domain")
        ctx = await _history(conn, [r["id"] for r in rows], span, before, before_task)
        counts = await queries.counts(conn, domain=domain)
    return render(
        request,
        "domain.html",
        ctx
        | {
            "domain": domain,
            "rows": rows,
            "counts": counts,
            "self_url": self_url(request),
            "base": f"{root_path(request)}/domains/{domain}",
        },
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse, dependencies=[page])
async def task_page(
    request: Request,
    task_id: str,
    span: str = "24h",
    before: int | None = Query(None, ge=0, le=BIGINT_MAX),
) -> HTMLResponse:
    async with pool(request).acquire() as conn:
        task = await queries.task(conn, task_id)
        if task is None:
            raise HTTPException(404, "no such task")
        ctx = await _history(conn, [task_id], span, before, None)
        ctx["requests"] = await requestviews.recent(conn, task["grp"])
        blocked = await blocked_by(request, conn, task)
    return render(
        request,
        "task.html",
        ctx
        | {
            "t": task,
            "blocked_by": blocked,
            "self_url": self_url(request),
            "base": f"{root_path(request)}/tasks/{task_id}",
        },
    )


@router.get("/tasks/{task_id}/results/{seq}", response_class=HTMLResponse, dependencies=[page])
async def result_page(
    request: Request, task_id: str, seq: int = Path(ge=0, le=BIGINT_MAX)
) -> HTMLResponse:
    async with pool(request).acquire() as conn:
        result = await queries.result(conn, task_id, seq)
        task = await queries.task(conn, task_id)
    if result is None:
        raise HTTPException(404, "no such result")
    return render(request, "result.html", {"r": result, "t": task})


@router.get("/agents", response_class=HTMLResponse, dependencies=[page])
async def agents_page(request: Request) -> HTMLResponse:
    async with pool(request).acquire() as conn:
        rows = await queries.agents(conn)
    for r in rows:
        r["lost"] = (r["silent_for"] or 0) > AGENT_LOST_AFTER and not r["stopping"]
        r["gone"] = r["stopping"] and (r["silent_for"] or 0) > AGENT_LOST_AFTER
    return render(
        request,
        "agents.html",
        {"rows": rows, "self_url": self_url(request), "lost_after": AGENT_LOST_AFTER},
    )


@router.get("/audit", response_class=HTMLResponse, dependencies=[page])
async def audit_page(
    request: Request,
    type: str = "",
    task: str = "",
    since: str = "",
    until: str = "",
    page: int = Query(1, ge=1, le=PAGE_MAX),
) -> HTMLResponse:
    async with pool(request).acquire() as conn:
        rows = await queries.events(
            conn,
            type,
            task.strip(),
            parse_instant(since),
            parse_instant(until),
            PAGE_SIZE + 1,
            (page - 1) * PAGE_SIZE,
        )
    filters = {"type": type, "task": task, "since": since, "until": until}
    return render(
        request,
        "audit.html",
        {
            "rows": rows[:PAGE_SIZE],
            "more": len(rows) > PAGE_SIZE,
            "page": page,
            "types": queries.EVENT_TYPES,
            "self_url": self_url(request),
            **filters,
            "link": lambda **kw: (
                f"{root_path(request)}/audit?" + urlencode(filters | {"page": page} | kw)
            ),
        },
    )
