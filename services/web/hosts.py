"""The hosts page and ``/api/hosts``: each agent's machine, its figures and its tasks.

A host's severity is the worst of its tasks (group ``h-<agent>``), the same tasks the
dashboard lists; its graphs are drawn on the server from ``host_samples`` as small SVGs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from pydantic import Field

from services.web import queries
from services.web.apimodels import ERRORS, Model, Severity
from services.web.auth import api_access, page_access
from services.web.templating import render

SPANS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
#: Points per graph: a sample every 30 s over 7 days is 20,160 rows; a graph needs no more.
BUCKETS = 120
#: What each graph shows: sample column, title, upper bound (None: the largest value seen).
GRAPHS = (
    ("cpu", "CPU %", 100.0),
    ("memory", "memory %", 100.0),
    ("load", "load (1 min)", None),
    ("disk", "fullest disk %", 100.0),
)

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(api_access)], responses=ERRORS)

_HOSTS = f"""
SELECT h.agent, h.location, h.hostname, h.seen_at, h.interval_s, h.cores, h.cpu_percent,
       h.load1, h.load5, h.load15, h.memory_total, h.memory_available, h.memory_percent,
       h.swap_total, h.swap_free, h.swap_percent, h.boot_time, h.filesystems,
       coalesce(h.received_at, h.seen_at) AS received_at,
       extract(epoch FROM now() - coalesce(h.received_at, h.seen_at)) AS silent_for,
       coalesce(w.rank, 3) AS rank, w.tasks
FROM hosts h
LEFT JOIN LATERAL (
  SELECT min({queries.RANK}) AS rank, count(*) AS tasks FROM tasks
  WHERE grp = 'h-' || h.agent AND removed_at IS NULL
) w ON true
WHERE $1 = '' OR h.agent = $1
ORDER BY rank, h.agent
"""

_SERIES = """
SELECT agent, date_bin($1::interval, at, $2::timestamptz) AS at,
       avg(cpu_percent) AS cpu, avg(memory_percent) AS memory, avg(load1) AS load,
       max(disk_percent) AS disk
FROM host_samples WHERE at >= $2 AND ($3 = '' OR agent = $3)
GROUP BY 1, 2 ORDER BY 1, 2
"""

_TASKS = f"""
SELECT {queries.TASK_COLUMNS} FROM tasks
WHERE grp = 'h-' || $1 AND removed_at IS NULL ORDER BY {queries.RANK}, url
"""


async def hosts(conn: asyncpg.Connection, agent: str = "") -> list[dict[str, Any]]:
    rows = [dict(r) for r in await conn.fetch(_HOSTS, agent)]
    for r in rows:
        r["severity"] = queries.RANKED[r["rank"]] if r["tasks"] else "pending"
        r["filesystems"] = json.loads(r["filesystems"])
        r["silent"] = (r["silent_for"] or 0) > 2 * r["interval_s"]
    return rows


async def series(
    conn: asyncpg.Connection, span: timedelta, agent: str = ""
) -> dict[str, list[dict[str, Any]]]:
    start = datetime.now(UTC) - span
    out: dict[str, list[dict[str, Any]]] = {}
    for r in await conn.fetch(_SERIES, span / BUCKETS, start, agent):
        out.setdefault(r["agent"], []).append(dict(r))
    return out


def spark(
    points: list[dict[str, Any]],
    key: str,
    title: str,
    top: float | None,
    end: datetime,
    span: timedelta,
) -> Markup:
    """A 160×36 line of ``key`` over ``span`` up to ``end`` (a dot for a lone sample), with
    its last value as text."""
    w, h = 160, 36
    values = [(p["at"], p[key]) for p in points if p[key] is not None]
    high = top or max([v for _, v in values] + [1.0])
    start = end - span
    xy = [
        (max(0.0, min(1.0, (at - start) / span)) * w, h - min(v / high, 1.0) * (h - 2) - 1)
        for at, v in values
    ]
    if len(xy) > 1:
        mark = '<polyline class="line" fill="none" points="{}"/>'.format(
            " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        )
    elif xy:
        mark = f'<circle class="dot" r="2" cx="{xy[0][0]:.1f}" cy="{xy[0][1]:.1f}"/>'
    else:
        mark = ""
    last = f"{values[-1][1]:.1f}" if values else "—"
    return Markup(
        f'<figure class="graph"><svg role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">'
        f"<title>{escape(title)}: {last}</title>{mark}"
        f"</svg><figcaption>{escape(title)} <b>{last}</b></figcaption></figure>"
    )


async def _page_data(conn: asyncpg.Connection, span_name: str, agent: str = "") -> dict[str, Any]:
    span = SPANS.get(span_name, SPANS["1h"])
    rows = await hosts(conn, agent)
    points = await series(conn, span, agent)
    now = datetime.now(UTC)
    for r in rows:
        r["graphs"] = [
            spark(points.get(r["agent"], []), key, title, top, now, span)
            for key, title, top in GRAPHS
        ]
    return {"rows": rows, "span": span_name if span_name in SPANS else "1h", "spans": list(SPANS)}


@router.get("/hosts", response_class=HTMLResponse, dependencies=[Depends(page_access())])
async def hosts_page(request: Request, span: str = "1h") -> HTMLResponse:
    async with request.app.state.pool.acquire() as conn:
        data = await _page_data(conn, span)
    self_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(request, "hosts.html", data | {"self_url": self_url, "one": None})


@router.get("/hosts/{agent}", response_class=HTMLResponse, dependencies=[Depends(page_access())])
async def host_page(request: Request, agent: str, span: str = "1h") -> HTMLResponse:
    async with request.app.state.pool.acquire() as conn:
        data = await _page_data(conn, span, agent)
        if not data["rows"]:
            raise HTTPException(404, "no such host")
        tasks = [dict(r) for r in await conn.fetch(_TASKS, agent)]
    self_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request, "hosts.html", data | {"self_url": self_url, "one": agent, "tasks": tasks}
    )


class Filesystem(Model):
    mount: str
    fstype: str
    device: str
    size_bytes: int
    free_bytes: int
    avail_bytes: int = Field(description="bytes an unprivileged user can still write")
    used_percent: float
    files: int = 0
    files_free: int = 0
    inodes_percent: float | None = None


class Host(Model):
    agent: str
    location: str
    hostname: str
    severity: Severity = Field(description="the worst of its tasks; pending when not judged")
    seen_at: datetime = Field(description="when its last figures were taken, by its clock")
    received_at: datetime = Field(description="when the log received its last figures")
    silent_for: float = Field(description="seconds since the log received its last figures")
    interval_s: float = Field(description="seconds between two figures")
    cores: int
    cpu_percent: float
    load1: float
    load5: float
    load15: float
    memory_total: int
    memory_available: int
    memory_percent: float
    swap_total: int
    swap_free: int
    swap_percent: float
    boot_time: datetime
    filesystems: list[Filesystem]


@api.get("/hosts", summary="Agents' hosts with their latest figures, worst severity first")
async def api_hosts(request: Request) -> list[Host]:
    async with request.app.state.pool.acquire() as conn:
        rows = await hosts(conn)
    return [Host(**{k: r[k] for k in Host.model_fields}) for r in rows]
