"""The JSON API under /api/: what the pages show, for scripts (bearer token or session).

Listings are arrays, newest or worst first, bounded by ``limit`` and paged with
``offset`` (or ``before``, a log sequence, for the result history).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from services.web import queries
from services.web.auth import api_access

router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(api_access)])
Limit = Query(100, ge=1, le=10000, description="at most this many items")
Offset = Query(0, ge=0, description="skip this many items")


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            v = v.isoformat()
        elif hasattr(v, "total_seconds"):
            v = v.total_seconds()
        out[k] = v
    return out


def task_json(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "group": r["grp"],
        "domain": r["domain"],
        "url": r["url"],
        "method": r["method"],
        "ip_version": r["ip_version"],
        "check": r["check"],
        "expected": json.loads(r["expected"]) if r["expected"] is not None else None,
        "frequency": r["frequency"],
        "severity": r["severity"],
        "severity_since": _iso(r["severity_since"]),
        "reason": r["reason"],
        "failures": r["failures"],
        "last_status": r["last_status"],
        "last_detail": r["last_detail"],
        "last_checked_at": _iso(r["last_checked_at"]),
        "last_result_seq": r["last_result_seq"],
        "http_status": r["http_status"],
        "response_ms": r["response_ms"],
        "next_run": _iso(r["next_run"]),
        "agent": r["last_agent"],
    }


@router.get("/tasks", summary="Tasks with their current severity and last result, worst first")
async def api_tasks(
    request: Request,
    q: str = Query("", description="text in domain, URL or check"),
    severity: str = Query("", description="ok, warning, critical, unknown or pending"),
    domain: str = "",
    limit: int = Query(1000, ge=1, le=10000),
    offset: int = Offset,
) -> list[dict[str, Any]]:
    async with pool(request).acquire() as conn:
        rows = await queries.tasks(conn, q, severity, limit, offset, domain=domain)
    return [task_json(r) for r in rows]


@router.get("/tasks/{task_id}", summary="One task, its definition and uptime")
async def api_task(request: Request, task_id: str) -> dict[str, Any]:
    async with pool(request).acquire() as conn:
        t = await queries.task(conn, task_id)
        if t is None:
            raise HTTPException(404, "no such task")
        uptime = await queries.uptime(conn, [task_id])
    return task_json(t) | {
        "definition": json.loads(t["definition"]),
        "removed_at": _iso(t["removed_at"]),
        "uptime": uptime,
    }


@router.get("/results", summary="Results, newest first")
async def api_results(
    request: Request,
    task: str = "",
    domain: str = "",
    agent: str = "",
    status: str = Query("", description="success, failure or error"),
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = Query(
        None, description="only results older than this log sequence (paging)"
    ),
    limit: int = Limit,
) -> list[dict[str, Any]]:
    async with pool(request).acquire() as conn:
        ids = [task] if task else (await queries.domain_tasks(conn, domain) if domain else None)
        rows = await queries.results(conn, ids, limit, before, agent, status, since, until)
    return [_plain(r) for r in rows]


@router.get("/results/{task_id}/{seq}", summary="One result with the agent's observation")
async def api_result(request: Request, task_id: str, seq: int) -> dict[str, Any]:
    async with pool(request).acquire() as conn:
        r = await queries.result(conn, task_id, seq)
    if r is None:
        raise HTTPException(404, "no such result")
    return _plain(r) | {"observation": json.loads(r["observation"])}


@router.get("/domains", summary="Domains with task counts per severity, worst first")
async def api_domains(
    request: Request, q: str = "", limit: int = Limit, offset: int = Offset
) -> list[dict[str, Any]]:
    async with pool(request).acquire() as conn:
        rows = await queries.domains(conn, q, limit, offset)
    return [_plain({k: v for k, v in r.items() if k != "rank"}) for r in rows]


@router.get("/agents", summary="Agents with their last heartbeat")
async def api_agents(request: Request) -> list[dict[str, Any]]:
    async with pool(request).acquire() as conn:
        rows = await queries.agents(conn)
    return [_plain(r) for r in rows]


@router.get("/incidents", summary="Periods of non-ok severity, newest first")
async def api_incidents(
    request: Request,
    task: str = "",
    domain: str = "",
    since: datetime | None = None,
    limit: int = Limit,
) -> list[dict[str, Any]]:
    async with pool(request).acquire() as conn:
        ids = [task] if task else (await queries.domain_tasks(conn, domain) if domain else None)
        rows = await queries.incidents(conn, ids, limit, since)
    return [_plain(r) for r in rows]


@router.get(
    "/events",
    summary="The audit trail: configurations, severity changes, dead letters, newest first",
)
async def api_events(
    request: Request,
    type: str = Query("", description=", ".join(queries.EVENT_TYPES)),
    task: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Limit,
    offset: int = Offset,
) -> list[dict[str, Any]]:
    async with pool(request).acquire() as conn:
        rows = await queries.events(conn, type, task, since, until, limit, offset)
    return [
        _plain(r) | {"data": json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]}
        for r in rows
    ]


@router.get("/stats", summary="Argos's task statistics: upcoming, selected, results")
async def api_stats(request: Request) -> dict[str, int]:
    async with pool(request).acquire() as conn:
        return await queries.argos_stats(conn)


@router.get("/severities", summary="Argos's count of tasks per severity")
async def api_severities(request: Request) -> dict[str, int]:
    async with pool(request).acquire() as conn:
        return await queries.argos_severities(conn)
