"""Blame the probe, as tables: which location is degraded (thresholds, hysteresis, too few
tasks), and the quorum once a degraded location stops counting."""

from __future__ import annotations

import pytest

from checks.degraded import Thresholds, assess, counted
from checks.judge import TaskState
from checks.quorum import LocationMemory
from events.types import Judgement, TaskDef, TaskJudged

T = Thresholds(min_tasks=3, ratio=0.5)


def _seen(rows: str) -> dict[str, dict[str, str]]:
    """``"ok:crit ok:crit"``: one task per word, eu's severity then us's."""
    short = {"ok": "ok", "crit": "critical", "unk": "unknown", "-": None}
    out = {}
    for i, word in enumerate(rows.split()):
        eu, us = (short[x] for x in word.split(":"))
        out[f"t{i}"] = {k: v for k, v in (("eu", eu), ("us", us)) if v}
    return out


@pytest.mark.parametrize(
    ("rows", "before", "after"),
    [
        pytest.param("ok:ok ok:ok ok:ok", set(), {"eu": False, "us": False}, id="all-healthy"),
        pytest.param("ok:crit ok:crit ok:crit", set(), {"eu": False, "us": True}, id="us-broadly"),
        pytest.param("ok:crit ok:crit ok:ok ok:ok", set(), {"eu": False, "us": True}, id="half"),
        pytest.param("ok:crit ok:ok ok:ok ok:ok", set(), {"eu": False, "us": False}, id="one-site"),
        pytest.param(
            "crit:crit crit:crit crit:crit", set(), {"eu": False, "us": False}, id="sites-down"
        ),
        pytest.param("ok:crit ok:crit", set(), {}, id="too-few-tasks"),
        pytest.param("ok:unk ok:unk ok:unk", set(), {"eu": False, "us": True}, id="unknown-counts"),
        pytest.param(
            "ok:crit ok:ok ok:ok ok:ok",
            {"us"},
            {"eu": False, "us": True},
            id="stays-above-half-ratio",
        ),
        pytest.param("ok:ok ok:ok ok:ok ok:ok", {"us"}, {"eu": False, "us": False}, id="recovers"),
        pytest.param("ok:crit ok:- ok:- ok:-", set(), {}, id="unshared-tasks-ignored"),
    ],
)
def test_degraded_location(rows, before, after):
    got = {loc: a.degraded for loc, a in assess(_seen(rows), T, before).items()}
    assert got == after


def test_reason_names_the_share():
    (a,) = [x for x in assess(_seen("ok:crit ok:crit ok:crit"), T, set()).values() if x.degraded]
    assert a.reason.startswith("3 of 3 tasks fail from us while another location sees them ok")


@pytest.mark.parametrize(
    ("severities", "degraded", "kept"),
    [
        pytest.param({"eu": "ok", "us": "critical"}, {"us"}, {"eu": "ok"}, id="dropped"),
        pytest.param({"us": "critical"}, {"us"}, {"us": "critical"}, id="never-all"),
        pytest.param(
            {"eu": "ok", "us": "critical"}, set(), {"eu": "ok", "us": "critical"}, id="none"
        ),
    ],
)
def test_counted(severities, degraded, kept):
    assert counted(severities, degraded) == kept


def _task(i: int) -> TaskDef:
    return TaskDef(
        id=f"t{i}",
        group=f"g{i}",
        domain="x.org",
        url=f"https://x.org/{i}",
        method="GET",
        ip_version=4,
        check="status-is",
        expected=200,
        frequency=60.0,
        locations=["eu", "us"],
    )


def test_quorum_stops_counting_a_degraded_location():
    """quorum 1: any failing location is critical, until that location is judged degraded."""
    memory = LocationMemory()
    states: dict[str, TaskState] = {}
    tasks = [_task(i) for i in range(3)]
    severities = []
    for loc, sev in [("eu", "ok"), ("us", "critical")]:
        for t in tasks:
            verdict = TaskJudged(
                at=1.0e9,
                group=t.group,
                completion=1,
                next_run=1.0e9,
                judgements=[Judgement(t.id, sev, None, "r", 0)],  # type: ignore[arg-type]
            )
            out = memory.combine([t], states, loc, verdict, quorum=1, thresholds=T)
            severities.append(out.judgements[0].severity)
    # eu ok ×3; then us fails: the first two tasks alone do not blame us; the third does.
    assert severities == ["ok", "ok", "ok", "critical", "critical", "ok"]
    assert memory.degraded == {"us"}
    assert "us not counted: degraded" in out.judgements[0].reason
