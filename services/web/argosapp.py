"""Argos 0.10.3's ``/api/app/…`` for the scripts that read it: its paths and keys
(``argos/server/routes/api_app.py``), from Tocsin's read models.

Access is Tocsin's, as for ``/api/stats``: a token or a session, or
``unauthenticated_access: all``; the version, open in Argos, is open here too. Rescheduling
is Tocsin's check now (a write token, or a session with its CSRF token), asked for each
request group with a task that is not ok.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request

from runtime import __version__
from services.web import auth, checknow, queries
from services.web.apimodels import ERRORS

router = APIRouter(
    prefix="/api/app", tags=["argos"], dependencies=[Depends(auth.api_access)], responses=ERRORS
)
version_router = APIRouter(prefix="/api/app", tags=["argos"])
#: Argos's order of severities, worst first (its ``cmp_severities``).
WORST_FIRST = ("unknown", "critical", "warning", "ok")


def _local(at: datetime) -> datetime:
    """As Argos writes its times: the server's local time, without a zone."""
    return at.astimezone().replace(tzinfo=None)


@version_router.get("/version", summary="Argos's version answer: Tocsin's, and logged in or not")
async def version(request: Request) -> dict[str, Any]:
    user = await auth.current_user(request) or await auth.api_token(request)
    return {"argos_monitoring": __version__, "logged_in": user is not None}


@router.get("/", summary="Argos's severities, agents and tasks waiting to be run")
async def counts(request: Request) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        severities = await queries.argos_severities(conn)
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM agents) AS agents,
                      (SELECT count(*) FROM tasks WHERE removed_at IS NULL
                         AND (next_run IS NULL OR next_run <= now())) AS waiting"""
        )
    return {"severities": severities, "agents": row["agents"], "waiting_tasks": row["waiting"]}


@router.get("/agents", summary="Argos's agents and when they were last seen")
async def agents(request: Request) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch("SELECT name, last_seen FROM agents ORDER BY name")
    return {"agents": {r["name"]: _local(r["last_seen"]).isoformat() for r in rows}}


@router.get("/domains", summary="Argos's domains, their tasks' severities and last check")
async def domains(request: Request) -> dict[str, Any]:
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT domain, array_agg(DISTINCT coalesce(severity, 'unknown')) AS severities,
                      max(last_checked_at) AS last, count(*) AS tasks
               FROM tasks WHERE removed_at IS NULL GROUP BY domain ORDER BY domain"""
        )
    return {
        "domains": {r["domain"]: [s for s in WORST_FIRST if s in r["severities"]] for r in rows},
        "domains_last_checks": {
            # Argos prints the datetime itself (a space between date and time).
            r["domain"]: str(_local(r["last"])) if r["last"] else "Waiting to be checked"
            for r in rows
        },
        "total_task_count": sum(r["tasks"] for r in rows),
    }


@router.post(
    "/reschedule/all",
    summary="Check now every request group with a task not ok (a write token)",
    responses={k: v for k, v in checknow.ASK_RESPONSES.items() if k not in (200, 202)},
    dependencies=[Depends(checknow.write_access)],
    openapi_extra={checknow.NEEDS_CREDENTIALS: True},
)
async def reschedule_all(request: Request) -> dict[str, str]:
    csrf = request.headers.get("x-csrf-token", "")
    await checknow.actor(request, csrf)  # refused even when every task is ok
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT DISTINCT ON (grp) id FROM tasks
               WHERE removed_at IS NULL AND coalesce(severity, 'unknown') <> 'ok'
               ORDER BY grp, id"""
        )
    for r in rows:
        await checknow.ask(request, csrf, r["id"], None)
    return {"msg": "Non OK tasks reschuled"}  # sic: Argos's words
