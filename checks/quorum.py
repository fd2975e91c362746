"""The verdict across several locations: a quorum of failing locations makes it critical.

One location seeing a site down may be that location's own network; several
seeing it down is the site. So a task watched from N locations is critical only
when at least ``quorum`` of them fail (default: a majority of N), a warning
when some fail but fewer, and otherwise what the locations agree on. Locations
that have not reported yet count as not failing: a first bad result from one
location raises a warning, not an alert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import msgspec

from checks import degraded as probes
from checks.judge import TaskState
from events.types import Judgement, Severity, TaskDef, TaskJudged


def configured(
    websites: Mapping[str, Mapping[str, object]], general: Mapping[str, object], domain: str
) -> int | None:
    """The quorum in force for a website: its own, else ``general``'s, else None (majority)."""
    value = websites.get(domain, {}).get("quorum", general.get("quorum"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def needed(locations: int, quorum: int | None) -> int:
    """Failing locations needed for critical: ``quorum`` clamped to [1, N], else a majority."""
    if quorum is None:
        return locations // 2 + 1
    return max(1, min(quorum, locations))


def combine(severities: Mapping[str, Severity], locations: int, quorum: int | None) -> Severity:
    """The task's severity from the latest severity of each location that reported."""
    if not severities:
        return "unknown"
    values = list(severities.values())
    failing = values.count("critical")
    if failing >= needed(locations, quorum):
        return "critical"
    if failing or "warning" in values:
        return "warning"
    if all(v == "unknown" for v in values):
        return "unknown"
    return "ok"  # locations that could not check are outvoted by those that saw it up


class LocationMemory:
    """The latest severity of each task at each location (restored from judgements' detail)."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, Severity]] = defaultdict(dict)  # task → location →
        #: Locations judged degraded (checks/degraded.py): their results do not count.
        self.degraded: set[str] = set()

    def remember(self, judged: TaskJudged) -> None:
        for j in judged.judgements:
            for location, severity in j.locations.items():
                self._seen[j.task][location] = severity

    def combine(
        self,
        tasks: list[TaskDef],
        states: Mapping[str, TaskState],
        location: str,
        verdict: TaskJudged,
        quorum: int | None = None,
        thresholds: probes.Thresholds | None = None,
    ) -> TaskJudged:
        """``verdict`` judged one location's completion; return the verdict across locations.

        ``quorum`` is the website's (or ``general``'s) setting; None means a majority.

        Tasks checked from one location are returned unchanged (no ``locations`` detail),
        so single-location deployments record exactly what they did before.
        """
        by_id = {t.id: t for t in tasks}
        out = []
        for j in verdict.judgements:
            task = by_id.get(j.task)
            if task is None or len(task.locations) < 2:
                out.append(j)
                continue
            seen = self._seen[j.task]
            seen[location] = j.severity
            for gone in set(seen) - set(task.locations):
                del seen[gone]
            self._assess(thresholds or probes.Thresholds())
            counting = probes.counted(seen, self.degraded)
            voters = len(task.locations) - len(set(seen) - set(counting))
            severity = combine(counting, voters, quorum)
            prev = states.get(j.task, TaskState())
            failures = 0 if severity == "ok" else prev.failures + 1
            out.append(
                Judgement(
                    j.task,
                    severity,
                    prev.severity,
                    _reason(counting, task, location, j.reason, severity, quorum)
                    + _excluded(set(seen) - set(counting)),
                    failures,
                    locations=dict(sorted(seen.items())),
                )
            )
        return msgspec.structs.replace(verdict, judgements=out)

    def _assess(self, t: probes.Thresholds) -> None:
        for a in probes.assess(self._seen, t, self.degraded).values():
            if a.degraded:
                self.degraded.add(a.location)
            else:
                self.degraded.discard(a.location)


def _excluded(locations: set[str]) -> str:
    if not locations:
        return ""
    return f" ({', '.join(sorted(locations))} not counted: degraded)"


def _reason(
    seen: Mapping[str, Severity],
    task: TaskDef,
    location: str,
    detail: str,
    severity: Severity,
    quorum: int | None,
) -> str:
    failing = sorted(loc for loc, s in seen.items() if s == "critical")
    n = len(task.locations)
    head = (
        f"failing at {len(failing)} of {n} locations ({', '.join(failing)}; quorum "
        f"{needed(n, quorum)})"
        if failing
        else f"{severity} at {len(seen)} of {n} locations"
    )
    return f"{head}; latest from {location}: {detail}" if detail else head
