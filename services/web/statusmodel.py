"""What a status page says, decided from plain rows: pure functions, no I/O.

A component is up when all its checks are ok, in partial outage when some of its checks
fail (or one is in warning, which is what a check failing from only some locations
becomes), down when all fail, and in maintenance while a window of its websites is on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from configuration.maintenance import Window

DOWN = frozenset({"critical", "unknown"})
#: The page's headline by its worst component.
HEADLINES = {
    "up": "All systems operational",
    "partial": "Partial outage",
    "down": "Major outage",
    "maintenance": "Maintenance in progress",
    "pending": "No check has reported yet",
}
_ORDER = ("down", "partial", "maintenance", "pending", "up")


def component_state(severities: list[str], in_maintenance: bool = False) -> str:
    if in_maintenance:
        return "maintenance"
    known = [s for s in severities if s and s != "pending"]
    if not known:
        return "pending"
    down = sum(s in DOWN for s in known)
    if down == len(known):
        return "down"
    if down or "warning" in known:
        return "partial"
    return "up"


def overall(states: list[str]) -> str:
    """The worst state among components (down before partial before maintenance)."""
    for s in _ORDER:
        if s in states:
            return s
    return "up"


@dataclass
class Day:
    day: dt.date
    observed: float = 0.0
    down: float = 0.0
    partial: float = 0.0
    state: str = "none"
    uptime: float | None = None


def daily(changes: dict[str, list[dict[str, Any]]], now: dt.datetime, days: int = 90) -> list[Day]:
    """One entry per UTC day, oldest first, for the component made of these tasks.

    ``changes``: each task's severity changes oldest first (``at``, ``severity``), the first
    one possibly before the window. The component's state is followed through every change
    of any of its tasks; a day is down if the whole component was down at some moment,
    partial if only part of it was, up otherwise, and "none" when nothing was observed.
    """
    today = now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    out = [Day(first + dt.timedelta(days=i)) for i in range(days)]
    timeline = sorted(
        ((c["at"], task, c["severity"]) for task, cs in changes.items() for c in cs),
        key=lambda x: x[0],
    )
    current: dict[str, str] = {}
    i = 0
    while i < len(timeline) and timeline[i][0] <= start:
        current[timeline[i][1]] = timeline[i][2]
        i += 1
    t = start
    while t < now:
        end = min(timeline[i][0], now) if i < len(timeline) else now
        if current and end > t:
            _account(out, start, t, end, component_state(list(current.values())))
        t = end
        while i < len(timeline) and timeline[i][0] <= t:
            current[timeline[i][1]] = timeline[i][2]
            i += 1
    for d in out:
        if d.observed > 0:
            d.uptime = (d.observed - d.down) / d.observed * 100
            d.state = "down" if d.down > 0 else "partial" if d.partial > 0 else "up"
    return out


def _account(
    out: list[Day], start: dt.datetime, a: dt.datetime, b: dt.datetime, state: str
) -> None:
    """Spread the interval [a, b) in ``state`` over the days it covers."""
    while a < b:
        index = (a - start).days
        day_end = start + dt.timedelta(days=index + 1)
        piece = (min(b, day_end) - a).total_seconds()
        if 0 <= index < len(out):
            d = out[index]
            d.observed += piece
            if state == "down":
                d.down += piece
            elif state == "partial":
                d.partial += piece
        a = min(b, day_end)


def uptime(days: list[Day]) -> float | None:
    observed = sum(d.observed for d in days)
    return (observed - sum(d.down for d in days)) / observed * 100 if observed else None


def upcoming(
    windows: list[Window], now: dt.datetime, horizon: dt.timedelta = dt.timedelta(days=7)
) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """Maintenance windows in force now or starting within ``horizon``: (start, end, reason)."""
    out = []
    for w in windows:
        if w.at is not None:
            starts = [w.at]
        else:
            assert w.time is not None
            zone = ZoneInfo(w.tz)
            local = now.astimezone(zone).date()
            back = int(w.duration // 86400) + 1
            starts = [
                dt.datetime.combine(local + dt.timedelta(days=k), w.time, zone)
                for k in range(-back, horizon.days + 1)
                if not w.days or (local + dt.timedelta(days=k)).weekday() in w.days
            ]
        for s in starts:
            end = s + dt.timedelta(seconds=w.duration)
            if end > now and s < now + horizon:
                out.append((s, end, w.reason))
    return sorted(out)


def incidents(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Operators' incidents from their posts (oldest first): title and components from the
    first post, the phase of the last, every update newest first; open ones first."""
    by_id: dict[str, dict[str, Any]] = {}
    for p in posts:
        inc = by_id.setdefault(
            p["incident"],
            {
                "id": p["incident"],
                "title": p["title"],
                "components": p["components"],
                "opened": p["at"],
                "updates": [],
            },
        )
        inc["title"] = inc["title"] or p["title"]
        inc["phase"] = p["phase"]
        inc["updated"] = p["at"]
        inc["updates"].insert(0, p)
    out = list(by_id.values())
    out.sort(key=lambda i: (i["phase"] == "resolved", -i["updated"].timestamp()))
    return out
