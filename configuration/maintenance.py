"""Maintenance windows from the configuration: parsing (strict) and "is it on now?" (pure).

A window is one-off (``start`` is a date and time) or recurring (``days`` of
the week and a ``start`` time of day); both have a ``duration`` and an
optional ``tz`` (default UTC), so "Sunday 02:00 Europe/Paris" follows DST.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from events.values import bounded_duration

DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
KEYS = {"start", "duration", "days", "tz", "reason"}


@dataclass(frozen=True)
class Window:
    duration: float
    tz: str = "UTC"
    reason: str = ""
    at: dt.datetime | None = None  # one-off: aware start
    days: frozenset[int] = frozenset()  # recurring: weekdays (empty: every day)
    time: dt.time | None = None  # recurring: local start time

    def covers(self, when: float) -> bool:
        if self.at is not None:
            start = self.at.timestamp()
            return start <= when < start + self.duration
        assert self.time is not None
        zone = ZoneInfo(self.tz)
        local = dt.datetime.fromtimestamp(when, zone).date()
        # A window that started on an earlier day may still be running.
        back = int(self.duration // 86400) + 1
        for i in range(back + 1):
            day = local - dt.timedelta(days=i)
            if self.days and day.weekday() not in self.days:
                continue
            start = dt.datetime.combine(day, self.time, zone).timestamp()
            if start <= when < start + self.duration:
                return True
        return False


def active(windows: list[Window], when: float) -> Window | None:
    return next((w for w in windows if w.covers(when)), None)


def parse_windows(raw: Any) -> list[Window]:
    """Validate a ``maintenance`` list; raise ValueError naming the item and the problem."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("maintenance: expected a list of windows")
    out = []
    for i, item in enumerate(raw):
        where = f"maintenance[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping with start and duration")
        unknown = set(item) - KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if "start" not in item or "duration" not in item:
            raise ValueError(f"{where}: start and duration are required")
        tz = str(item.get("tz", "UTC"))
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{where}.tz: unknown time zone {tz!r}") from None
        try:
            duration = bounded_duration(item["duration"])
        except ValueError as exc:
            raise ValueError(f"{where}.duration: {exc}") from None
        reason = str(item.get("reason", ""))
        if "days" in item:
            days = _days(item["days"], where)
            out.append(
                Window(duration, tz, reason, days=days, time=_time_of_day(item["start"], where))
            )
        else:
            out.append(Window(duration, tz, reason, at=_moment(item["start"], zone, where)))
    return out


def _days(raw: Any, where: str) -> frozenset[int]:
    items = raw if isinstance(raw, list) else [raw]
    out = set()
    for d in items:
        key = str(d).strip().lower()[:3]
        if key not in DAYS:
            raise ValueError(f"{where}.days: {d!r} is not a day (mon … sun)")
        out.add(DAYS[key])
    return frozenset(out)


def _time_of_day(raw: Any, where: str) -> dt.time:
    if isinstance(raw, int) and not isinstance(raw, bool):
        # YAML 1.1 reads an unquoted 02:30 as the base-60 number 150 (minutes).
        if 0 <= raw < 24 * 60:
            return dt.time(raw // 60, raw % 60)
    try:
        return dt.time.fromisoformat(str(raw))
    except ValueError:
        raise ValueError(f"{where}.start: expected a time such as '02:30', got {raw!r}") from None


def _moment(raw: Any, zone: ZoneInfo, where: str) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        value = raw
    else:
        try:
            value = dt.datetime.fromisoformat(str(raw))
        except ValueError:
            raise ValueError(
                f"{where}.start: expected a date and time such as "
                f"'2025-06-01T22:00' (or days: for a recurring window), "
                f"got {raw!r}"
            ) from None
    return value if value.tzinfo else value.replace(tzinfo=zone)
