"""The heartbeat kind: what its configuration accepts, and when pings are due (period, or cron
in a time zone, across a daylight-saving change). Pings themselves: tests/test_heartbeats.py
(the scheduler's verdicts) and tests/test_heartbeat_e2e.py (through the real services)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from checks import heartbeat

KEY = "6f1c1bd2-5a43-4cb6-9d55-0a3f1f7e2b10"
PARIS = ZoneInfo("Europe/Paris")


def _at(text: str, tz: ZoneInfo = PARIS) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


ACCEPTED = [
    pytest.param(
        {"uuid": KEY, "period": "1d"},
        {"uuid": KEY, "period": 86400.0, "grace": 3600.0},
        id="period-default-grace",
    ),
    pytest.param(
        {"uuid": KEY.upper(), "cron": "0 3 * * *", "tz": "Europe/Paris", "grace": "30m"},
        {"uuid": KEY, "cron": "0 3 * * *", "tz": "Europe/Paris", "grace": 1800.0},
        id="cron-in-a-zone-uuid-normalised",
    ),
    pytest.param(
        {"uuid": KEY, "cron": "*/15 * * * *"},
        {"uuid": KEY, "cron": "*/15 * * * *", "tz": "UTC", "grace": 3600.0},
        id="cron-defaults-to-utc",
    ),
]


@pytest.mark.parametrize(("value", "parsed"), ACCEPTED)
def test_parse(value, parsed):
    assert heartbeat.parse(value) == parsed


REFUSED = [
    pytest.param({"period": "1d"}, "uuid is required", id="no-uuid"),
    pytest.param({"uuid": "abc", "period": "1d"}, "uuid must be a UUID", id="bad-uuid"),
    pytest.param({"uuid": KEY}, "give either period", id="no-schedule"),
    pytest.param(
        {"uuid": KEY, "period": "1d", "cron": "* * * * *"}, "give either period", id="both"
    ),
    pytest.param({"uuid": KEY, "cron": "61 * * * *"}, "invalid cron expression", id="bad-cron"),
    pytest.param(
        {"uuid": KEY, "cron": "0 3 * * *", "tz": "Mars/Olympus"}, "unknown time zone", id="bad-tz"
    ),
    pytest.param({"uuid": KEY, "period": "1d", "tz": "UTC"}, "tz goes with cron", id="tz-period"),
    pytest.param({"uuid": KEY, "period": "soon"}, "expected a duration", id="bad-period"),
    pytest.param({"uuid": KEY, "period": "1d", "every": 2}, "unknown key 'every'", id="unknown"),
    pytest.param("1d", "expected {uuid", id="not-a-mapping"),
]


@pytest.mark.parametrize(("value", "message"), REFUSED)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{")):
        heartbeat.parse(value)


DUE = [
    pytest.param({"period": 3600.0}, "2026-06-01T10:20:00", "2026-06-01T11:20:00", id="period"),
    pytest.param(
        {"cron": "0 3 * * *", "tz": "Europe/Paris"},
        "2026-06-01T03:00:05",
        "2026-06-02T03:00:00",
        id="cron-next-day-local-time",
    ),
    pytest.param(
        {"cron": "0 3 * * *", "tz": "Europe/Paris"},
        "2026-03-28T03:10:00",
        "2026-03-29T03:00:00",
        id="cron-across-spring-dst-change",
    ),
    pytest.param(
        {"cron": "30 * * * *", "tz": "UTC"},
        "2026-06-01T10:29:59",
        "2026-06-01T10:30:00",
        id="cron-utc-same-hour",
    ),
]


@pytest.mark.parametrize(("schedule", "after", "due"), DUE)
def test_next_expected(schedule, after, due):
    tz = ZoneInfo(schedule.get("tz", "Europe/Paris"))
    expected = {"uuid": KEY, "grace": 60.0, **schedule}
    assert heartbeat.next_expected(expected, _at(after, tz)) == _at(due, tz)
    assert heartbeat.deadline(expected, _at(after, tz)) == _at(due, tz) + 60
