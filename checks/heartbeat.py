"""``heartbeat: {uuid: …, period: 1d, grace: 1h}``: a job pings Tocsin (push, beyond Argos).

For ``heartbeat://NAME`` targets. Nothing is probed: the job calls its secret
URL ``/ping/<uuid>`` (``/start`` when it begins, ``/fail`` or ``/<exit code>``
when it ends) and the scheduler judges the pings and their absence
(services/scheduler/heartbeats.py). The schedule is a ``period`` or a ``cron``
expression with its time zone ``tz``; ``grace`` is how late a ping may be.
"""

from __future__ import annotations

import uuid as uuids
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from checks.base import Response, Verdict, check_text, error, kind_of
from events.values import duration

NAME = "heartbeat"
SCHEMES = {"heartbeat"}
#: Pushed, not probed: no agent request is made for it (the scheduler and ``tocsin check``
#: leave it to the pings).
PUSH = True
KEYS = {"uuid", "period", "cron", "tz", "grace"}
DEFAULT_GRACE = 3600.0


def parse(expected: Any) -> dict[str, Any]:
    if not isinstance(expected, dict):
        raise ValueError(
            f"expected {{uuid: …, period: 1d, grace: 1h}} or {{uuid: …, cron: '0 3 * * *', "
            f"tz: Europe/Paris, grace: 1h}}, got {kind_of(expected)}"
        )
    unknown = sorted(set(expected) - KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    if "uuid" not in expected:
        raise ValueError(
            "uuid is required: the secret of the ping URL (make one with `tocsin heartbeat new`)"
        )
    try:
        secret = str(uuids.UUID(check_text(expected["uuid"])))
    except ValueError:
        raise ValueError(f"uuid must be a UUID, got {expected['uuid']!r}") from None
    out: dict[str, Any] = {"uuid": secret}
    if ("period" in expected) == ("cron" in expected):
        raise ValueError("give either period (1d) or cron ('0 3 * * *'), not both nor neither")
    if "period" in expected:
        if "tz" in expected:
            raise ValueError("tz goes with cron: a period counts from the last ping")
        out["period"] = duration(expected["period"])
    else:
        cron = check_text(expected["cron"])
        if not croniter.is_valid(cron):
            raise ValueError(f"invalid cron expression {cron!r}")
        tz = check_text(expected.get("tz", "UTC"))
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r} (such as Europe/Paris, UTC)") from None
        out["cron"], out["tz"] = cron, tz
    out["grace"] = duration(expected["grace"]) if "grace" in expected else DEFAULT_GRACE
    return out


def next_expected(expected: dict[str, Any], after: float) -> float:
    """When the next ping is due, after a ping (or the start of monitoring) at ``after``."""
    if "period" in expected:
        return after + float(expected["period"])
    start = datetime.fromtimestamp(after, ZoneInfo(expected["tz"]))
    return float(croniter(expected["cron"], start).get_next(float))


def deadline(expected: dict[str, Any], after: float) -> float:
    """When the lack of a ping becomes critical: the next due time plus the grace."""
    return next_expected(expected, after) + float(expected["grace"])


def evaluate(response: Response, expected: dict[str, Any]) -> Verdict:
    return error("a heartbeat is judged from its pings, never probed")
