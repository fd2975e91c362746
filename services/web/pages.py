"""The operator's pages: dashboard, domain, task, result, agents and audit.

Each view gathers its rows and renders a template; htmx refreshes (on each
projector commit, via SSE) get only the page's ``live`` block.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from checks import pushed
from services.web import history, queries, recent, requestviews
from services.web.auth import page_access
from services.web.blocked import blocked_by
from services.web.charts import SPANS, favicon_svg, heartbeat_strip, response_chart, sparkline
from services.web.edges import BIGINT_MAX, PAGE_MAX, parse_instant
from services.web.templating import external_path, render, root_path

PAGE_SIZE = 100
RESULTS_PAGE = 50
#: Results per heartbeat strip on the dashboard.
BEATS = 30
#: An agent silent for longer than this (three missed heartbeats) is shown as lost.
AGENT_LOST_AFTER = 35.0
#: An agent whose clock is this far from the log's is told so: beyond a heartbeat's transit,
#: its checks' times (and a certificate's "expires in") are off by as much.
CLOCK_TOLD_FROM = 10.0

router = APIRouter(include_in_schema=False)
dashboard_access = Depends(page_access(("dashboard", "all")))
page = Depends(page_access())


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


def self_url(request: Request) -> str:
    return external_path(request)


class RecentHistory:
    """Each shown task's strip, sparkline and 24-hour uptime, kept per process.

    Keyed by the task's last result and severity, so an entry is stale exactly when the
    task got a new result or verdict; the uptime's window slides, so an entry also expires
    after ``ttl`` seconds. A live refresh then queries only the tasks that changed, which
    keeps refreshes of a 10,000-task installation cheap however often results arrive.
    """

    def __init__(self, ttl: float = 60.0, size: int = 20_000) -> None:
        self.ttl, self.size = ttl, size
        self.entries: dict[tuple[str, Any, str], tuple[float, Any, Any, float | None]] = {}

    async def fill(self, conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
        """Adds ``beats``, ``spark`` and ``uptime_24h`` to each task row.

        Three queries for the tasks not cached, each bounded by the rows shown (never by the
        size of the history), so the dashboard costs the same with a day or a year of results.
        """
        clock = time.monotonic()
        keys = {r["id"]: (r["id"], r["last_result_seq"], r["severity"]) for r in rows}
        stale = [r for r in rows if self.entries.get(keys[r["id"]], (0.0,))[0] < clock - self.ttl]
        if stale:
            if len(self.entries) + len(stale) > self.size:
                self.entries.clear()
            for r, (strip, spark, uptime) in zip(
                stale, await _recent_history(conn, stale), strict=True
            ):
                self.entries[keys[r["id"]]] = (clock, strip, spark, uptime)
        for r in rows:
            _, r["beats"], r["spark"], r["uptime_24h"] = self.entries[keys[r["id"]]]


async def _recent_history(
    conn: asyncpg.Connection, rows: list[dict[str, Any]]
) -> list[tuple[Any, Any, float | None]]:
    ids = [r["id"] for r in rows]
    now = datetime.now(UTC)
    day_ago = now - timedelta(days=1)
    beats = await recent.heartbeats(conn, ids, BEATS)
    oldest = min((b[0]["checked_at"] for b in beats.values() if b), default=day_ago)
    changes = await recent.changes_since(conn, ids, min(oldest, day_ago))
    out = []
    for r in rows:
        strip, task_changes = beats[r["id"]], changes[r["id"]]
        for b, sev in zip(
            strip, history.beat_severities(strip, task_changes, r["severity"]), strict=True
        ):
            b["severity"] = sev
        out.append(
            (
                heartbeat_strip(strip),
                sparkline(strip),
                history.observed_uptime(task_changes, day_ago, now),
            )
        )
    return out


def recent_history(request: Request) -> RecentHistory:
    return request.app.state.recent_history  # type: ignore[no-any-return]


@router.get("/", response_class=HTMLResponse, dependencies=[dashboard_access])
async def dashboard(
    request: Request, q: str = "", severity: str = "", page: int = Query(1, ge=1, le=PAGE_MAX)
) -> HTMLResponse:
    if severity and severity not in queries.SEVERITIES:
        severity = ""
    async with pool(request).acquire() as conn:
        rows = await queries.tasks(conn, q, severity, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        counts = await queries.counts(conn, q)
        await recent_history(request).fill(conn, rows)
    # Past the last page no row tells the total: the counts do (a bookmark kept while
    # tasks were removed, a page number typed).
    total = rows[0]["total"] if rows else counts[severity] if severity else sum(counts.values())
    return render(
        request,
        "dashboard.html",
        {
            "rows": rows,
            "domains": _by_domain(rows),
            "counts": counts,
            "total": total,
            "q": q,
            "severity": severity,
            "page": page,
            "page_size": PAGE_SIZE,
            "last_page": max(1, -(-total // PAGE_SIZE)),
            "self_url": self_url(request),
            "link": lambda **kw: (
                f"{root_path(request)}/?"
                + urlencode({"q": q, "severity": severity, "page": page} | kw)
            ),
        },
    )


def _by_domain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive rows of one domain grouped, with the domain's worst severity (rows come
    worst domain first, worst task first, so it is the first row's)."""
    groups: list[dict[str, Any]] = []
    for r in rows:
        if not groups or groups[-1]["domain"] != r["domain"]:
            groups.append({"domain": r["domain"], "worst": r["severity"], "tasks": []})
        groups[-1]["tasks"].append(r)
    return groups


async def _history(
    conn: asyncpg.Connection, ids: list[str], span: str, before: int | None, before_task: str | None
) -> dict[str, Any]:
    now = datetime.now(UTC)
    first = await recent.first_result_at(conn, ids)
    if span not in SPANS:
        span = ""  # the default: a window that fits the data
    width = SPANS[span] if span else history.fit_window(first, now)
    points = await queries.series(conn, ids, width)
    p50, p95 = await recent.quantiles(conn, ids, width)
    results = await queries.results(conn, ids, RESULTS_PAGE + 1, before, before_task=before_task)
    incidents = await queries.incidents(conn, ids, limit=20)
    await recent.attach_notes(conn, incidents)
    return {
        "uptime": await queries.uptime(conn, ids),
        "observed_since": first,
        "chart": response_chart(points, now, width, p50, p95),
        "p50": p50,
        "p95": p95,
        "span": span,
        "spans": list(SPANS),
        "results": results[:RESULTS_PAGE],
        "more": results[RESULTS_PAGE - 1] if len(results) > RESULTS_PAGE else None,
        "incidents": incidents,
        "before": before,
    }


def _runnable(task: dict[str, Any]) -> bool:
    """Whether "check now" can run the task: one in force that an agent runs (a heartbeat
    monitor is judged on its pings; a removed task is no longer in the scheduler's hands)."""
    return task.get("removed_at") is None and not pushed(task["check"])


@router.get("/domains/{domain}", response_class=HTMLResponse, dependencies=[page])
async def domain_page(
    request: Request,
    domain: str,
    span: str = "",
    before: int | None = Query(None, ge=0, le=BIGINT_MAX),
    before_task: str | None = None,
) -> HTMLResponse:
    async with pool(request).acquire() as conn:
        rows = await queries.tasks(conn, limit=500, domain=domain)
        if not rows:
            raise HTTPException(404, "no such domain")
        await recent_history(request).fill(conn, rows)
        ctx = await _history(conn, [r["id"] for r in rows], span, before, before_task)
        counts = await queries.counts(conn, domain=domain)
    return render(
        request,
        "domain.html",
        ctx
        | {
            "domain": domain,
            "rows": rows,
            "runnable": any(_runnable(r) for r in rows),
            "counts": counts,
            "self_url": self_url(request),
            "base": f"{root_path(request)}/domains/{quote(domain, safe='')}",
        },
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse, dependencies=[page])
async def task_page(
    request: Request,
    task_id: str,
    span: str = "",
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
            "runnable": _runnable(task),
            "blocked_by": blocked,
            "self_url": self_url(request),
            "base": f"{root_path(request)}/tasks/{task_id}",
        },
    )


@router.get("/favicon.svg")
async def favicon(critical: int = Query(0, ge=0, le=99)) -> Response:
    """The bell; with ``?critical=N`` a red disc with the count, which the page script
    switches to while tasks are critical (so a background tab shows trouble)."""
    return Response(
        favicon_svg(critical),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
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
        r["clock_off"] = abs(r["clock_offset"] or 0) >= CLOCK_TOLD_FROM
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
