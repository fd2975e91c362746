"""Pure functions over a task's recent history: the severity of each result in a heartbeat
strip, uptime as a share of the observed time, and percentiles. No I/O here: the views
fetch the rows (queries.py) and pass them in."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Any

#: Severities a task is "up" in: a warning is degraded service, not an outage.
UP = frozenset({"ok", "warning"})
#: What a result's status alone says when no verdict was recorded for it.
STATUS_SEVERITY = {"success": "ok", "failure": "critical", "error": "unknown"}


def beat_severities(
    results: list[dict[str, Any]], changes: list[dict[str, Any]], current: str | None
) -> list[str]:
    """The verdict each result led to, for results of one task oldest first.

    A verdict (``severity_changes`` row, only when the severity changed) is logged after
    the completion it judges and before the next one of the same task, so the severity
    after result *i* is the last change logged before result *i+1* (the task's current
    severity for the newest); no change in between means the severity stayed. With no
    change on record before it, the result's status decides.
    """
    seqs = [c["seq"] for c in changes]
    out = []
    for i, r in enumerate(results):
        if i + 1 == len(results) and current and current != "pending":
            out.append(current)
            continue
        k = bisect.bisect_left(seqs, results[i + 1]["seq"]) if i + 1 < len(results) else len(seqs)
        # No change logged up to the next result: the status is all there is to go by.
        out.append(changes[k - 1]["severity"] if k else STATUS_SEVERITY.get(r["status"], "unknown"))
    return out


def observed_uptime(changes: list[dict[str, Any]], start: datetime, end: datetime) -> float | None:
    """Percentage of the observed part of [start, end] spent ok or warning.

    ``changes``: one task's severity changes oldest first, including the last one before
    ``start`` if any. Time before the first verdict is not observed and does not count,
    so a task added an hour ago shows its uptime over that hour, not over 24 h.
    """
    observed = up = 0.0
    for i, c in enumerate(changes):
        begin = max(c["at"], start)
        finish = min(changes[i + 1]["at"], end) if i + 1 < len(changes) else end
        span = (finish - begin).total_seconds()
        if span <= 0:
            continue
        observed += span
        if c["severity"] in UP:
            up += span
    return up / observed * 100 if observed > 0 else None


#: The windows a chart fitted to its data may take: a new task gets minutes, not a day.
FIT_WINDOWS = tuple(
    timedelta(minutes=m)
    for m in (5, 15, 30, 60, 180, 360, 720, 1440, 3 * 1440, 7 * 1440, 14 * 1440, 30 * 1440)
)


def fit_window(first: datetime | None, now: datetime) -> timedelta:
    """The smallest window that holds every result since ``first`` (30 days at most), so
    a new installation's chart is not a sliver at the right edge of a 24-hour axis."""
    if first is None:
        return FIT_WINDOWS[0]
    age = (now - first) * 1.05
    return next((w for w in FIT_WINDOWS if w >= age), FIT_WINDOWS[-1])
