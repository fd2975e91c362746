"""The quorum verdict across locations, as a table, and folded over successive judgements."""

from __future__ import annotations

import pytest

from checks.judge import TaskState
from checks.quorum import LocationMemory, combine, configured, needed
from events.types import Judgement, TaskDef, TaskJudged


@pytest.mark.parametrize(
    ("severities", "n", "quorum", "expected"),
    [
        ({}, 2, None, "unknown"),
        ({"eu": "ok", "us": "ok"}, 2, None, "ok"),
        ({"eu": "critical", "us": "ok"}, 2, None, "warning"),  # majority of 2 is 2
        ({"eu": "critical", "us": "critical"}, 2, None, "critical"),
        ({"eu": "critical"}, 2, None, "warning"),  # us not reported yet
        ({"eu": "critical"}, 2, 1, "critical"),  # quorum 1: any location
        ({"eu": "critical", "us": "ok", "asia": "ok"}, 3, None, "warning"),
        ({"eu": "critical", "us": "critical", "asia": "ok"}, 3, None, "critical"),
        ({"eu": "critical", "us": "critical", "asia": "ok"}, 3, 3, "warning"),
        ({"eu": "ok", "us": "warning"}, 2, None, "warning"),  # e.g. certificate expiring
        ({"eu": "unknown", "us": "ok"}, 2, None, "ok"),  # us saw it up
        ({"eu": "unknown", "us": "unknown"}, 2, None, "unknown"),
        ({"eu": "unknown", "us": "critical"}, 2, None, "warning"),
        ({"eu": "critical", "us": "critical"}, 2, 5, "critical"),  # quorum clamped to N
    ],
)
def test_combine(severities: dict[str, str], n: int, quorum: int | None, expected: str) -> None:
    assert combine(severities, n, quorum) == expected  # type: ignore[arg-type]


def test_configured_quorum_website_over_general() -> None:
    assert configured({"a": {"quorum": 1}}, {"quorum": 3}, "a") == 1
    assert configured({"a": {}}, {"quorum": 3}, "a") == 3
    assert configured({}, {}, "a") is None


def test_needed_defaults_to_a_majority() -> None:
    assert [needed(n, None) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    assert needed(3, 0) == 1


def _task(locations: list[str]) -> TaskDef:
    return TaskDef(
        id="t",
        group="g",
        domain="d",
        url="http://d/",
        method="GET",
        ip_version=4,
        check="status-is",
        expected=200,
        frequency=60,
        locations=locations,
    )


def _judged(severity: str, reason: str = "") -> TaskJudged:
    return TaskJudged(
        at=1.0,
        group="g",
        completion=1,
        next_run=61.0,
        judgements=[Judgement("t", severity, None, reason)],
    )  # type: ignore[arg-type]


def test_memory_combines_successive_locations() -> None:
    memory = LocationMemory()
    task = _task(["eu", "us"])
    states: dict[str, TaskState] = {}
    first = memory.combine([task], states, "eu", _judged("critical", "status 500"))
    j = first.judgements[0]
    assert (j.severity, j.locations) == ("warning", {"eu": "critical"})
    assert "failing at 1 of 2 locations (eu; quorum 2)" in j.reason
    states["t"] = TaskState(j.severity, j.failures)
    second = memory.combine([task], states, "us", _judged("critical", "status 500"))
    j = second.judgements[0]
    assert (j.severity, j.previous, j.failures) == ("critical", "warning", 2)
    assert j.locations == {"eu": "critical", "us": "critical"}
    states["t"] = TaskState(j.severity, j.failures)
    third = memory.combine([task], states, "eu", _judged("ok"))
    assert third.judgements[0].severity == "warning"  # us still failing


def test_memory_is_restored_from_judgements_and_single_location_untouched() -> None:
    memory = LocationMemory()
    memory.remember(
        TaskJudged(
            at=1.0,
            group="g",
            completion=1,
            next_run=2.0,
            judgements=[
                Judgement("t", "warning", None, "", locations={"eu": "critical", "us": "ok"})
            ],
        )
    )
    again = memory.combine([_task(["eu", "us"])], {}, "us", _judged("critical"))
    assert again.judgements[0].severity == "critical"
    single = _judged("critical")
    assert memory.combine([_task(["eu"])], {}, "eu", single) is not None
    assert memory.combine([_task(["eu"])], {}, "eu", single).judgements == single.judgements
