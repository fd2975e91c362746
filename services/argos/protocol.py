"""What Argos 0.10.3's agent API takes and promises, apart from the gateway that serves it.

Pure: the body of ``POST /api/results`` as Argos validates it (``argos.schemas.AgentResult``),
the task ids the gateway hands out, and how long a request stays with an Argos agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

#: Argos's ``recurring_tasks.max_lock_seconds`` when the configuration does not set it.
DEFAULT_LEASE = 100.0


class SerializableException(BaseModel):
    """Argos's context of a result whose check raised (``argos.schemas.SerializableException``)."""

    error_message: str
    error_type: str
    error_details: str


class AgentResult(BaseModel):
    """One result as Argos's ``POST /api/results`` validates it (same fields, types and
    statuses; pydantic's default lax mode, as Argos, so ``"12"`` is task 12). A body that does
    not fit is answered 422 by FastAPI, as Argos answers it, and nothing of it is recorded."""

    task_id: int
    # on-check: the certificate check hands the grading to the server.
    status: Literal["success", "failure", "error", "on-check"]
    context: dict[str, Any] | SerializableException

    def context_dict(self) -> dict[str, Any]:
        if isinstance(self.context, SerializableException):
            return self.context.model_dump()
        return self.context


class TaskIds:
    """Task ids never handed out twice, across restarts too: an agent still holding ids of
    the gateway before a restart must not post results onto tasks of another agent. Each id
    is at least the clock in microseconds since the epoch, so a restarted gateway starts past
    every id of the previous one unless that one handed out more than a million a second;
    below 2**53 (JSON-safe for JavaScript readers) until the year 2255."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, int(self._clock() * 1_000_000))
        return self._last


def lease_deadline(now: float, due: float, budget: float, timeout: float, most: float) -> float:
    """When a request handed to an Argos agent at ``now`` is given back if no result came.

    The scheduler gives a request up ``budget`` seconds after it was ``due`` (twice the
    frequency, or the timeout if longer): giving it back by the middle of that budget leaves
    the other half, at least the request's timeout, for another agent to answer before its
    tasks turn unknown. Never sooner than the ``timeout`` from now (a request handed out late
    still gets its chance) nor later than ``most`` (``max_lock_seconds``, ``--lease``)."""
    return min(now + most, max(due + budget / 2, now + timeout))
