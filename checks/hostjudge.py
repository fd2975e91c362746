"""Host figures → tasks and severities: pure functions, the scheduler does the I/O.

A host is one task group (``h-<agent>``); each judged metric is one task of it (``cpu``,
``memory``, ``swap``, ``load`` and, per judged filesystem, ``disk`` and ``inodes``), so a host
task is alerted, silenced, listed and shown like any check's task. A figure strictly above a
threshold for at least the threshold's ``for`` is that severity; ``failures`` counts
consecutive non-ok judgements as for checks. A host with no figures for longer than
``STALE_AFTER`` intervals is ``unknown``, counted from its last figures or, when later, from
when the scheduler started watching: the monitor's own downtime is not the host's silence.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from configuration.hosts import HostRules, Threshold
from events.types import HostObserved, Judgement, Severity, TaskDef, TaskJudged

#: Silent for 1.5 intervals means the expected observation is half an interval late: with the
#: scheduler's one-second tick, the host is unknown before two intervals have passed.
STALE_AFTER = 1.5
GROUP_PREFIX = "h-"


@dataclass(frozen=True)
class HostTaskState:
    severity: Severity | None = None
    failures: int = 0
    #: Since when the figure has been above the warning / critical level (None: it is not).
    warning_since: float | None = None
    critical_since: float | None = None


def group(agent: str) -> str:
    return f"{GROUP_PREFIX}{agent}"


def domain(agent: str) -> str:
    """What host tasks have for a domain (silences, routing, the dashboard's grouping)."""
    return f"host:{agent}"


def agent_of(group_id: str) -> str | None:
    """The agent of a host group, None for a check's group."""
    return group_id[len(GROUP_PREFIX) :] if group_id.startswith(GROUP_PREFIX) else None


def task_id(agent: str, metric: str, mount: str | None = None) -> str:
    raw = "\x00".join((agent, metric, mount or ""))
    return "h" + hashlib.sha256(raw.encode()).hexdigest()[:23]


def grade(
    value: float, t: Threshold, state: HostTaskState, now: float
) -> tuple[Severity, HostTaskState]:
    """The severity of one figure, and the breach times to remember for the next one."""
    warning_since = critical_since = None
    if t.warning is not None and value > t.warning:
        warning_since = state.warning_since if state.warning_since is not None else now
    if t.critical is not None and value > t.critical:
        critical_since = state.critical_since if state.critical_since is not None else now
    severity: Severity = "ok"
    if critical_since is not None and now - critical_since >= t.for_:
        severity = "critical"
    elif warning_since is not None and now - warning_since >= t.for_:
        severity = "warning"
    return severity, replace(state, warning_since=warning_since, critical_since=critical_since)


def _levels(t: Threshold, unit: str) -> str:
    parts = [
        f"{name} above {level:g}{unit}"
        for name, level in (("warning", t.warning), ("critical", t.critical))
        if level is not None
    ]
    during = f" for {_duration(t.for_)}" if t.for_ else ""
    return ", ".join(parts) + during


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Figure:
    """One judged figure of one observation: its task and what to say about it."""

    task: TaskDef
    value: float
    threshold: Threshold
    text: str  # "disk / 93.2 % used"
    unit: str


def figures(obs: HostObserved, rules: HostRules) -> list[Figure]:
    """Every figure of ``obs`` that ``rules`` judge, each with its task definition."""
    t = rules.thresholds
    found: list[tuple[str, str | None, float, str, str]] = [
        ("cpu", None, obs.cpu_percent, f"CPU {obs.cpu_percent:.1f} % busy", " %"),
        ("memory", None, obs.memory_percent, f"memory {obs.memory_percent:.1f} % used", " %"),
        (
            "load",
            None,
            obs.load5 / obs.cores,
            f"load {obs.load5:.2f} over 5 min on {obs.cores} cores "
            f"({obs.load5 / obs.cores:.2f} per core)",
            " per core",
        ),
    ]
    if obs.swap_total_bytes > 0:  # no swap: nothing to judge
        found.append(("swap", None, obs.swap_percent, f"swap {obs.swap_percent:.1f} % used", " %"))
    for fs in obs.filesystems:
        if not rules.filesystems.judged(fs.mount, fs.fstype):
            continue
        found.append(
            (
                "disk",
                fs.mount,
                fs.used_percent,
                f"disk {fs.mount} {fs.used_percent:.1f} % used",
                " %",
            )
        )
        if fs.inodes_percent is not None:
            found.append(
                (
                    "inodes",
                    fs.mount,
                    fs.inodes_percent,
                    f"inodes of {fs.mount} {fs.inodes_percent:.1f} % used",
                    " %",
                )
            )
    out = []
    for metric, mount, value, text, unit in found:
        threshold = t[metric]
        if threshold.warning is None and threshold.critical is None:
            continue  # observed, never judged
        out.append(
            Figure(_task(obs, rules, metric, mount, threshold), value, threshold, text, unit)
        )
    return out


def _task(
    obs: HostObserved, rules: HostRules, metric: str, mount: str | None, t: Threshold
) -> TaskDef:
    expected = {
        k: v for k, v in (("warning", t.warning), ("critical", t.critical)) if v is not None
    }
    if t.for_:
        expected["for"] = t.for_
    return TaskDef(
        id=task_id(obs.agent, metric, mount),
        group=group(obs.agent),
        domain=domain(obs.agent),
        url=f"host://{obs.agent}/{metric}{mount or ''}",
        method="HOST",
        ip_version=4,
        check=f"host-{metric}",
        expected=expected,
        frequency=obs.interval,
        retry_before_notification=rules.retry_before_notification,
    )


def judge(
    obs: HostObserved, rules: HostRules, states: dict[str, HostTaskState]
) -> tuple[TaskJudged, dict[str, TaskDef], dict[str, HostTaskState]]:
    """The verdict on one observation, the tasks it judged and their states after it."""
    judgements, defs, after = [], {}, {}
    for f in figures(obs, rules):
        before = states.get(f.task.id, HostTaskState())
        severity, state = grade(f.value, f.threshold, before, obs.at)
        failures = 0 if severity == "ok" else before.failures + 1
        reason = f"{f.text} ({_levels(f.threshold, f.unit)})"
        judgements.append(Judgement(f.task.id, severity, before.severity, reason, failures))
        defs[f.task.id] = f.task
        after[f.task.id] = replace(state, severity=severity, failures=failures)
    verdict = TaskJudged(
        at=obs.at,
        group=group(obs.agent),
        completion=0,
        next_run=obs.at + obs.interval,
        judgements=judgements,
    )
    return verdict, defs, after


def stale(
    agent: str,
    tasks: list[str],
    states: dict[str, HostTaskState],
    last_seen: float,
    interval: float,
    now: float,
    watched_from: float,
) -> tuple[TaskJudged, dict[str, HostTaskState]] | None:
    """Every task of a silent host becomes ``unknown`` (once: None when they already are).
    ``watched_from``: when this scheduler started judging; figures the host sent while none
    was (a restart) would have been judged late, not lost: its silence counts from then."""
    if now - max(last_seen, watched_from) <= STALE_AFTER * interval:
        return None
    pending = [t for t in tasks if states.get(t, HostTaskState()).severity != "unknown"]
    if not pending:
        return None
    reason = (
        f"no figures from host {agent} for {now - last_seen:.0f}s "
        f"(it reports every {_duration(interval)}): is its agent running?"
    )
    judgements, after = [], {}
    for t in pending:
        before = states.get(t, HostTaskState())
        failures = before.failures + 1
        judgements.append(Judgement(t, "unknown", before.severity, reason, failures))
        after[t] = HostTaskState("unknown", failures)
    verdict = TaskJudged(
        at=now, group=group(agent), completion=0, next_run=now + interval, judgements=judgements
    )
    return verdict, after
