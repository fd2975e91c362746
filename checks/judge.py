"""Severity decisions: pure functions from what an agent observed to a verdict.

Argos's rules: success → ok, failure → critical, error → unknown; a request
that got no answer fails every check of its group, except the certificate
check which is only a warning then. Certificate expiry and response time are
graded here from the value the agent reported (by ``ssl.thresholds`` and the
task's limits), so changing a threshold needs no agent change.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from checks import CATALOGUE, domain_expiration
from events.types import CheckCompleted, CheckOutcome, Judgement, Severity, TaskDef, TaskJudged

STATUS_SEVERITY: dict[str, Severity] = {"success": "ok", "failure": "critical", "error": "unknown"}
CERT_CHECK = "ssl-certificate-expiration"
#: Argos's defaults: under a day left is critical, under five days a warning.
DEFAULT_THRESHOLDS: list[tuple[float, str]] = [(86400.0, "critical"), (5 * 86400.0, "warning")]


@dataclass(frozen=True, slots=True)
class TaskState:
    """Never changed in place: :func:`task_state` shares one per value, so a scheduler of
    100,000 tasks keeps a handful of these, not one each."""

    severity: Severity | None = None
    failures: int = 0


#: A task never judged (immutable: shared, not built again for each task judged).
NEVER_JUDGED = TaskState()


@functools.lru_cache(maxsize=4096)
def task_state(severity: Severity | None, failures: int) -> TaskState:
    return TaskState(severity, failures)


@dataclass(slots=True)
class GroupState:
    """What the scheduler remembers of a group between completions (restored from the log)."""

    last_completion: int = 0
    next_run: float | None = None
    recheck: bool = False
    #: The task list (the very object) whose requests the event contract was found to admit
    #: unsealed: the scheduler's dispatch checks a request of any other list in full.
    admitted: list[TaskDef] | None = None


def grade_certificate(
    not_after: float, now: float, thresholds: list[tuple[float, str]], what: str = "certificate"
) -> tuple[Severity, str]:
    left = not_after - now
    days = left / 86400
    for limit, severity in sorted(thresholds):
        if left < limit:
            return severity, f"{what} expires in {days:.1f} days"  # type: ignore[return-value]
    return "ok", f"{what} expires in {days:.1f} days"


def severity_of(
    task: TaskDef,
    outcome: CheckOutcome | None,
    completion: CheckCompleted,
    thresholds: list[tuple[float, str]],
) -> tuple[Severity, str]:
    if outcome is None:
        return "unknown", "the agent returned no outcome for this check"
    if task.check == CERT_CHECK and outcome.status != "error":
        if completion.observation.error is not None:
            return "warning", outcome.detail or completion.observation.error
        if outcome.status == "success" and outcome.value is not None:
            return grade_certificate(outcome.value, completion.at, thresholds)
    if task.check == domain_expiration.NAME:
        # A registry that does not answer says nothing of the domain: unknown, not critical.
        if completion.observation.error is not None:
            return "unknown", outcome.detail or completion.observation.error
        if outcome.status == "success" and outcome.value is not None:
            limits = domain_expiration.thresholds(task.expected, thresholds)
            return grade_certificate(outcome.value, completion.at, limits, "domain")
    # Kinds with warning/critical limits (response-time, packet-loss) grade their measure.
    grade = getattr(CATALOGUE.get(task.check), "grade", None)
    if (
        grade is not None
        and outcome.status != "error"
        and outcome.value is not None
        and isinstance(task.expected, dict)
    ):
        return grade(outcome.value, task.expected), outcome.detail
    return STATUS_SEVERITY[outcome.status], outcome.detail


def judge(
    tasks: list[TaskDef],
    states: dict[str, TaskState],
    group: GroupState,
    completion: CheckCompleted,
    seq: int,
    thresholds: list[tuple[float, str]],
) -> TaskJudged:
    """The verdict on one completion, and when the group runs next.

    ``failures`` counts consecutive non-ok results only: an ok resets it.
    After a non-ok result, ``recheck_delay`` (if set) brings one early run.
    """
    by_task = {o.task: o for o in completion.outcomes}
    judgements = []
    for task in tasks:
        severity, reason = severity_of(task, by_task.get(task.id), completion, thresholds)
        prev = states.get(task.id, NEVER_JUDGED)
        failures = 0 if severity == "ok" else prev.failures + 1
        judgements.append(Judgement(task.id, severity, prev.severity, reason, failures))
    frequency = min(t.frequency for t in tasks)
    delays = [t.recheck_delay for t in tasks if t.recheck_delay]
    bad = any(j.severity != "ok" for j in judgements)
    recheck = bool(bad and delays and not group.recheck)
    next_run = completion.at + (min(delays) if recheck and delays else frequency)
    return TaskJudged(
        at=completion.at,
        group=tasks[0].group,
        completion=seq,
        next_run=next_run,
        judgements=judgements,
        recheck=recheck,
    )


def no_result(
    tasks: list[TaskDef],
    states: dict[str, TaskState],
    now: float,
    reason: str,
    next_run: float | None = None,
) -> TaskJudged:
    """The verdict on a request that got no result (none in time, dead-lettered): every
    task of the group is unknown, with why, and counts as a failure."""
    judgements = [
        Judgement(
            task.id,
            "unknown",
            states.get(task.id, TaskState()).severity,
            reason,
            states.get(task.id, TaskState()).failures + 1,
        )
        for task in tasks
    ]
    return TaskJudged(
        at=now,
        group=tasks[0].group,
        completion=0,
        next_run=now if next_run is None else next_run,
        judgements=judgements,
    )


def apply(states: dict[str, TaskState], judged: TaskJudged) -> None:
    for j in judged.judgements:
        states[j.task] = task_state(j.severity, j.failures)
