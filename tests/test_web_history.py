"""The pure decisions behind the dashboard and the task pages: the verdict of each result in
a heartbeat strip, uptime over the observed time only, the chart window fitted to the data,
and check settings shown as YAML rather than as (doubly escaped) JSON."""

from __future__ import annotations

import datetime as dt

import pytest

from services.web import history
from services.web.charts import response_chart
from services.web.templating import yaml_block, yaml_inline

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def r(seq: int, status: str = "success") -> dict:
    return {"seq": seq, "status": status}


def c(seq: int, severity: str, at: dt.datetime = NOW) -> dict:
    return {"seq": seq, "severity": severity, "at": at}


@pytest.mark.parametrize(
    ("results", "changes", "current", "expected"),
    [
        # A warning (response time over its limit) comes from the verdict, not the status.
        (
            [r(1), r(3), r(5)],
            [c(2, "ok"), c(4, "warning")],
            "warning",
            ["ok", "warning", "warning"],
        ),
        # No change between two results: the severity stayed.
        ([r(1), r(3), r(5, "failure")], [c(2, "critical")], "critical", ["critical"] * 3),
        # Nothing on record yet: the status decides.
        ([r(1, "failure"), r(2, "error"), r(3)], [], "pending", ["critical", "unknown", "ok"]),
    ],
    ids=["warning-from-verdict", "unchanged-severity-stays", "status-without-verdict"],
)
def test_beat_severities(results, changes, current, expected):
    assert history.beat_severities(results, changes, current) == expected


def test_uptime_counts_only_the_observed_time():
    # Added an hour ago, down for the last 15 minutes: 75 %, not 99 % of a day.
    changes = [c(1, "ok", NOW - H), c(2, "critical", NOW - H / 4)]
    assert history.observed_uptime(changes, NOW - 24 * H, NOW) == pytest.approx(75.0)
    # A warning is degraded service, not an outage.
    assert history.observed_uptime([c(1, "warning", NOW - H)], NOW - 24 * H, NOW) == 100.0
    # The change before the window sets its start.
    before = [c(1, "critical", NOW - 48 * H), c(2, "ok", NOW - 12 * H)]
    assert history.observed_uptime(before, NOW - 24 * H, NOW) == pytest.approx(50.0)
    assert history.observed_uptime([], NOW - 24 * H, NOW) is None


@pytest.mark.parametrize(
    ("age", "window"),
    [
        (dt.timedelta(minutes=2), dt.timedelta(minutes=5)),
        (dt.timedelta(minutes=50), dt.timedelta(hours=1)),
        (dt.timedelta(hours=30), dt.timedelta(days=3)),
        (dt.timedelta(days=300), dt.timedelta(days=30)),
    ],
    ids=["new-install", "hour", "day-and-more", "capped"],
)
def test_chart_window_fits_the_data(age, window):
    assert history.fit_window(NOW - age, NOW) == window


def test_a_failure_is_no_fast_response():
    # A refused connection: no response time on the line, a red band instead.
    points = [
        {"at": NOW - H / 2, "avg_ms": 120.0, "max_ms": 150.0, "failed": 0, "n": 1},
        {"at": NOW - H / 4, "avg_ms": None, "max_ms": None, "failed": 1, "n": 1},
        {"at": NOW - H / 8, "avg_ms": 130.0, "max_ms": 130.0, "failed": 0, "n": 1},
    ]
    svg = str(response_chart(points, NOW, H, p50=125.0, p95=130.0))
    assert svg.count("<polyline") == 1 and svg.count('<rect class="fail"') == 1
    assert 'class="p50"' in svg and 'class="p95"' in svg
    assert "0 ok, 1 failed" in svg and "avg 120 ms, max 150 ms" in svg


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ('"\\"up\\""', "'\"up\"'"),
        ('{"warning":200.0,"critical":1000.0}', "{warning: 200, critical: 1000}"),
        ("200", "200"),
        ('"fine"', "fine"),
        ("[200, 304]", "[200, 304]"),
    ],
    ids=["quoted-text", "limits", "number", "text", "list"],
)
def test_check_settings_read_as_yaml(stored, shown):
    assert yaml_inline(stored) == shown


def test_a_definition_reads_as_yaml_and_strings_inside_stay_strings():
    text = yaml_block('{"url": "https://x.example/", "expected": "200", "frequency": 60.0}')
    assert text == "url: https://x.example/\nexpected: '200'\nfrequency: 60\n"
