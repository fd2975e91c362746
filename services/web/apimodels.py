"""The JSON API's published types: every response is one of these models, so the schema at
/openapi.json says what a client gets, and FastAPI checks each answer against it.

Also the shared parameter types: text never holds a NUL (PostgreSQL cannot store one), and
the schema says so, so a client generated from it never sends one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from services.web.edges import BIGINT_MAX, OFFSET_MAX

Severity = Literal["ok", "warning", "critical", "unknown", "pending"]
NO_NUL = r"^[^\x00]*$"


def text(description: str = "", max_length: int = 1000) -> Any:
    """A free-text query parameter: no NUL, bounded length."""
    return Query("", description=description, pattern=NO_NUL, max_length=max_length)


TaskId = Annotated[str, Path(pattern=NO_NUL, max_length=1000, description="a task's id")]
Seq = Annotated[int, Path(ge=0, le=BIGINT_MAX, description="a log sequence")]
Limit = Query(100, ge=1, le=10000, description="at most this many items")
Offset = Query(0, ge=0, le=OFFSET_MAX, description="skip this many items")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(Model):
    detail: str


class ValidationProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrors(Model):
    detail: list[ValidationProblem]


class Task(Model):
    id: str
    group: str
    domain: str
    url: str
    method: str
    ip_version: int
    check: str
    expected: Any = Field(description="the check's expected value, as configured")
    frequency: float = Field(description="seconds between checks")
    severity: Severity
    severity_since: datetime | None
    reason: str | None
    failures: int
    last_status: str | None
    last_detail: str | None
    last_checked_at: datetime | None
    last_result_seq: int | None
    http_status: int | None
    response_ms: float | None
    next_run: datetime | None
    agent: str | None


class Uptime(Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    day: float | None = Field(alias="24h", description="percent of successes over 24 hours")
    week: float | None = Field(alias="7d")
    month: float | None = Field(alias="30d")


class TaskDetail(Task):
    definition: dict[str, Any]
    removed_at: datetime | None
    uptime: Uptime


class Result(Model):
    seq: int
    task_id: str
    grp: str
    agent: str
    location: str
    request: str
    checked_at: datetime
    status: Literal["success", "failure", "error"]
    detail: str
    value: float | None
    http_status: int | None
    response_ms: float | None
    error: str | None


class ResultDetail(Result):
    observation: dict[str, Any] = Field(description="what the agent saw: status, headers, …")


class Domain(Model):
    domain: str
    severity: Severity = Field(description="the worst severity of its tasks")
    tasks: int
    ok: int
    warning: int
    critical: int
    unknown: int
    pending: int
    response_ms: float | None = Field(description="average of the last response times")
    since: datetime | None


class Agent(Model):
    name: str
    location: str
    version: str
    concurrency: int
    in_flight: int
    completed: int
    started_at: datetime
    last_seen: datetime = Field(description="its last heartbeat's time, by its own clock")
    received_at: datetime = Field(description="when the log received its last heartbeat")
    stopping: bool
    last_hour: int = Field(description="requests completed in the last hour")
    silent_for: float = Field(description="seconds since the log received its last heartbeat")
    clock_offset: float | None = Field(
        description="seconds its clock was ahead of the log's when that heartbeat landed "
        "(negative: behind; None: not known yet)"
    )


class Incident(Model):
    task_id: str
    start: datetime
    end: datetime | None = Field(description="None while it lasts")
    severity: Severity = Field(description="the worst severity reached")
    reason: str
    duration: float = Field(description="seconds")
    domain: str | None
    url: str | None
    check: str | None


class Event(Model):
    seq: int
    at: datetime
    type: Literal["config.applied", "severity.changed", "deadletter"]
    task_id: str | None
    grp: str | None
    summary: str
    data: Any


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "a parameter PostgreSQL cannot take"},
    401: {"model": Error, "description": "no valid token or session"},
    422: {"model": ValidationErrors, "description": "a parameter out of its type or range"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Error, "description": "not found"}}
#: Every write answers it to a read-scope token (the write guard, services/web/bodylimit.py).
READ_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": Error, "description": "a read-only token: it may only read"}
}
