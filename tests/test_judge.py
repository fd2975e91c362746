"""The scheduler's judgement, as tables: severities, consecutive failures, the one recheck."""

from __future__ import annotations

import pytest

from checks.judge import (
    DEFAULT_THRESHOLDS,
    GroupState,
    TaskState,
    apply,
    judge,
    no_result,
    severity_of,
)
from events.types import CheckCompleted, CheckOutcome, Observation, TaskDef

NOW = 1_800_000_000.0
DAY = 86400.0


def _task(
    check: str = "status-is", expected: object = 200, recheck: float | None = None, tid: str = "t1"
) -> TaskDef:
    return TaskDef(
        id=tid,
        group="g",
        domain="d",
        url="https://d/",
        method="GET",
        ip_version=4,
        check=check,
        expected=expected,
        frequency=60.0,
        recheck_delay=recheck,
    )


def _done(*outcomes: CheckOutcome, error: str | None = None, at: float = NOW) -> CheckCompleted:
    obs = Observation(error=error, error_kind="connect" if error else None)
    return CheckCompleted(
        at=at,
        request="r",
        group="g",
        agent="a",
        location="l",
        started=at,
        observation=obs,
        outcomes=list(outcomes),
    )


LIMITS = {"warning": 500.0, "critical": 2000.0}
SEVERITIES = [
    pytest.param(_task(), "success", None, None, "ok", id="success-ok"),
    pytest.param(_task(), "failure", None, None, "critical", id="failure-critical"),
    pytest.param(_task(), "error", None, None, "unknown", id="error-unknown"),
    pytest.param(_task(), "failure", None, "refused", "critical", id="no-answer-critical"),
    pytest.param(
        _task("ssl-certificate-expiration", "on-check"),
        "failure",
        None,
        "refused",
        "warning",
        id="no-answer-certificate-warning",
    ),
    pytest.param(
        _task("ssl-certificate-expiration", "on-check"),
        "success",
        NOW + 0.25 * DAY,
        None,
        "critical",
        id="certificate-6-hours",
    ),
    pytest.param(
        _task("ssl-certificate-expiration", "on-check"),
        "success",
        NOW + 3 * DAY,
        None,
        "warning",
        id="certificate-3-days",
    ),
    pytest.param(
        _task("ssl-certificate-expiration", "on-check"),
        "success",
        NOW + 30 * DAY,
        None,
        "ok",
        id="certificate-30-days",
    ),
    pytest.param(
        _task("ssl-certificate-expiration", "on-check"),
        "error",
        None,
        None,
        "unknown",
        id="certificate-not-seen",
    ),
    pytest.param(_task("response-time", LIMITS), "success", 120.0, None, "ok", id="fast"),
    pytest.param(_task("response-time", LIMITS), "success", 700.0, None, "warning", id="slow"),
    pytest.param(
        _task("response-time", LIMITS), "failure", 2500.0, None, "critical", id="too-slow"
    ),
    pytest.param(
        _task("response-time", LIMITS),
        "failure",
        None,
        "refused",
        "critical",
        id="response-time-no-answer",
    ),
]


@pytest.mark.parametrize(("task", "status", "value", "error", "severity"), SEVERITIES)
def test_severity(task, status, value, error, severity):
    outcome = CheckOutcome(task.id, task.check, status, "detail", value)
    assert (
        severity_of(task, outcome, _done(outcome, error=error), DEFAULT_THRESHOLDS)[0] == severity
    )


def test_custom_certificate_thresholds():
    task = _task("ssl-certificate-expiration", "on-check")
    outcome = CheckOutcome(task.id, task.check, "success", "", NOW + 10 * DAY)
    thresholds = [(7 * DAY, "critical"), (14 * DAY, "warning")]
    assert severity_of(task, outcome, _done(outcome), thresholds) == (
        "warning",
        "certificate expires in 10.0 days",
    )


def test_a_missing_outcome_is_unknown():
    assert severity_of(_task(), None, _done(), DEFAULT_THRESHOLDS)[0] == "unknown"


# Each row: the status of a run → (severity, consecutive failures, recheck?, delay to next run).
RUNS = [
    pytest.param(
        None,
        ["success", "failure", "failure", "success", "failure"],
        [
            ("ok", 0, False, 60),
            ("critical", 1, False, 60),
            ("critical", 2, False, 60),
            ("ok", 0, False, 60),
            ("critical", 1, False, 60),
        ],
        id="failures-count-consecutive-only",
    ),
    pytest.param(
        10.0,
        ["failure", "failure", "failure", "success", "failure"],
        [
            ("critical", 1, True, 10),
            ("critical", 2, False, 60),
            ("critical", 3, True, 10),
            ("ok", 0, False, 60),
            ("critical", 1, True, 10),
        ],
        id="one-recheck-then-frequency",
    ),
    pytest.param(
        10.0,
        ["error", "success"],
        [("unknown", 1, True, 10), ("ok", 0, False, 60)],
        id="unknown-is-rechecked-too",
    ),
]


@pytest.mark.parametrize(("recheck", "statuses", "expected"), RUNS)
def test_runs(recheck, statuses, expected):
    task = _task(recheck=recheck)
    states: dict[str, TaskState] = {}
    group = GroupState()
    got = []
    for n, status in enumerate(statuses):
        at = NOW + n * 100
        verdict = judge(
            [task],
            states,
            group,
            _done(CheckOutcome(task.id, task.check, status), at=at),
            n + 1,
            DEFAULT_THRESHOLDS,
        )
        apply(states, verdict)
        group.recheck = verdict.recheck
        (j,) = verdict.judgements
        got.append((j.severity, j.failures, verdict.recheck, verdict.next_run - at))
    assert got == expected


def test_previous_severity_is_carried():
    task = _task()
    states = {task.id: TaskState("critical", 3)}
    verdict = judge(
        [task], states, GroupState(), _done(CheckOutcome(task.id, task.check, "success")), 9, []
    )
    assert (verdict.judgements[0].previous, verdict.judgements[0].severity) == ("critical", "ok")


def test_no_result_is_unknown_and_counts_as_a_failure():
    a, b = _task(tid="a"), _task(tid="b")
    states = {"a": TaskState("ok", 0), "b": TaskState("critical", 2)}
    verdict = no_result([a, b], states, NOW, "no result for 125s")
    assert [(j.task, j.severity, j.previous, j.reason, j.failures) for j in verdict.judgements] == [
        ("a", "unknown", "ok", "no result for 125s", 1),
        ("b", "unknown", "critical", "no result for 125s", 3),
    ]
    assert (verdict.completion, verdict.next_run) == (0, NOW)
