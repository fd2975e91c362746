"""Pings of heartbeat monitors as results: each ping is a row of ``results`` for its task.

The task page then lists the last pings like the last checks, and the result
page shows what the ping carried (its log body, exit code, source) from the
observation's ``facts``, as for any target beyond HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from events.types import MonitorPinged, Observation

AGENT = "ping"
LOCATION = "push"


def _detail(ev: MonitorPinged) -> str:
    if ev.kind == "start":
        return "the job started"
    if ev.kind == "fail":
        code = f" (exit code {ev.exit_code})" if ev.exit_code is not None else ""
        return f"the job reported a failure{code}"
    return "ping received" + (" (exit code 0)" if ev.exit_code == 0 else "")


def rows(seq: int, ev: MonitorPinged) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The ``results`` row of a ping, and the task's latest-result columns."""
    facts: dict[str, Any] = {"ping": ev.kind, "body": ev.body, "body_bytes": ev.body_bytes}
    for key in ("exit_code", "source", "user_agent"):
        if getattr(ev, key) not in (None, ""):
            facts[key] = getattr(ev, key)
    obs = msgspec.json.encode(Observation(facts=facts)).decode()
    at = datetime.fromtimestamp(ev.at, UTC)
    status = "failure" if ev.kind == "fail" else "success"
    detail = _detail(ev)
    result = (
        seq, ev.task, ev.group, AGENT, LOCATION, f"ping.{seq}", at, status, detail,
        None, None, None, None, obs,
    )  # fmt: skip
    last = (ev.task, seq, status, detail, at, None, None, AGENT)
    return result, last
