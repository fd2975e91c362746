"""The JSON API under /api/: what the pages show, for scripts (bearer token or session).

Listings are arrays, newest or worst first, bounded by ``limit`` and paged with
``offset`` (or ``before``, a log sequence, for the result history).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from services.web import queries
from services.web.apimodels import (
    ERRORS,
    NOT_FOUND,
    Agent,
    Domain,
    Event,
    Incident,
    Limit,
    Offset,
    Result,
    ResultDetail,
    Seq,
    Severity,
    Task,
    TaskDetail,
    TaskId,
    Uptime,
    text,
)
from services.web.auth import api_access
from services.web.edges import BIGINT_MAX, Instant

router = APIRouter(
    prefix="/api", tags=["api"], dependencies=[Depends(api_access)], responses=ERRORS
)


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    # Intervals as seconds; the models take datetimes as they are.
    return {k: v.total_seconds() if hasattr(v, "total_seconds") else v for k, v in row.items()}


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
        "severity_since": r["severity_since"],
        "reason": r["reason"],
        "failures": r["failures"],
        "last_status": r["last_status"],
        "last_detail": r["last_detail"],
        "last_checked_at": r["last_checked_at"],
        "last_result_seq": r["last_result_seq"],
        "http_status": r["http_status"],
        "response_ms": r["response_ms"],
        "next_run": r["next_run"],
        "agent": r["last_agent"],
    }


@router.get("/tasks", summary="Tasks with their current severity and last result, worst first")
async def api_tasks(
    request: Request,
    q: str = text("text in domain, URL or check"),
    severity: Annotated[
        Severity | Literal[""], Query(description="only tasks of this severity")
    ] = "",
    domain: str = text("only the tasks of this domain"),
    limit: int = Query(1000, ge=1, le=10000),
    offset: int = Offset,
) -> list[Task]:
    async with pool(request).acquire() as conn:
        rows = await queries.tasks(conn, q, severity, limit, offset, domain=domain)
    return [Task(**task_json(r)) for r in rows]


@router.get("/tasks/{task_id}", summary="One task, its definition and uptime", responses=NOT_FOUND)
async def api_task(request: Request, task_id: TaskId) -> TaskDetail:
    async with pool(request).acquire() as conn:
        t = await queries.task(conn, task_id)
        if t is None:
            raise HTTPException(404, "no such task")
        uptime = await queries.uptime(conn, [task_id])
    return TaskDetail(
        **task_json(t),
        definition=json.loads(t["definition"]),
        removed_at=t["removed_at"],
        uptime=Uptime.model_validate(uptime),
    )


@router.get("/results", summary="Results, newest first")
async def api_results(
    request: Request,
    task: str = text("only the results of this task"),
    domain: str = text("only the results of this domain's tasks"),
    agent: str = text("only the results of this agent"),
    status: Literal["", "success", "failure", "error"] = Query(""),
    since: Instant | None = None,
    until: Instant | None = None,
    before: int | None = Query(
        None, ge=0, le=BIGINT_MAX, description="only results older than this log sequence (paging)"
    ),
    limit: int = Limit,
) -> list[Result]:
    async with pool(request).acquire() as conn:
        ids = [task] if task else (await queries.domain_tasks(conn, domain) if domain else None)
        rows = await queries.results(conn, ids, limit, before, agent, status, since, until)
    return [Result(**r) for r in rows]


@router.get(
    "/results/{task_id}/{seq}",
    summary="One result with the agent's observation",
    responses=NOT_FOUND,
)
async def api_result(request: Request, task_id: TaskId, seq: Seq) -> ResultDetail:
    async with pool(request).acquire() as conn:
        r = await queries.result(conn, task_id, seq)
    if r is None:
        raise HTTPException(404, "no such result")
    fields = {k: v for k, v in r.items() if k in ResultDetail.model_fields}
    return ResultDetail(**fields | {"observation": json.loads(r["observation"])})


@router.get("/domains", summary="Domains with task counts per severity, worst first")
async def api_domains(
    request: Request,
    q: str = text("text in domain, URL or check"),
    limit: int = Limit,
    offset: int = Offset,
) -> list[Domain]:
    async with pool(request).acquire() as conn:
        rows = await queries.domains(conn, q, limit, offset)
    return [Domain(**{k: v for k, v in r.items() if k != "rank"}) for r in rows]


@router.get("/agents", summary="Agents with their last heartbeat")
async def api_agents(request: Request) -> list[Agent]:
    async with pool(request).acquire() as conn:
        rows = await queries.agents(conn)
    return [Agent(**_plain(r)) for r in rows]


@router.get("/incidents", summary="Periods of non-ok severity, newest first")
async def api_incidents(
    request: Request,
    task: str = text("only the incidents of this task"),
    domain: str = text("only the incidents of this domain's tasks"),
    since: Instant | None = None,
    limit: int = Limit,
) -> list[Incident]:
    async with pool(request).acquire() as conn:
        ids = [task] if task else (await queries.domain_tasks(conn, domain) if domain else None)
        rows = await queries.incidents(conn, ids, limit, since)
    return [Incident(**_plain(r)) for r in rows]


@router.get(
    "/events",
    summary="The audit trail: configurations, severity changes, dead letters, newest first",
)
async def api_events(
    request: Request,
    type: Literal["", "config.applied", "severity.changed", "deadletter"] = Query(""),
    task: str = text("only the events of this task"),
    since: Instant | None = None,
    until: Instant | None = None,
    limit: int = Limit,
    offset: int = Offset,
) -> list[Event]:
    async with pool(request).acquire() as conn:
        rows = await queries.events(conn, type, task, since, until, limit, offset)
    return [
        Event(**r | {"data": json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]})
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
