"""Blame the probe: a location whose results fail broadly while other locations see the same
targets healthy is *degraded* (its own network, DNS or host broke, not the sites).

Pure, shared by the scheduler (a degraded location's results stop counting towards the
quorum) and the notifier (one alert naming the location and why, one recovery). Both feed
it the latest severity of each task at each location, so both reach the same verdict.

``general.degraded_location: {min_tasks: 3, ratio: 0.5}``: a location is degraded when, of
the at least ``min_tasks`` tasks it shares with another location that reported, at least
``ratio`` fail there while another location sees them ok; it is healthy again when that
share falls under half of ``ratio`` (so a location on the edge does not flap). With fewer
shared tasks nothing changes: a restarted process decides nothing until it has seen enough.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

OK = "ok"
S = TypeVar("S", bound=str)


@dataclass(frozen=True)
class Thresholds:
    min_tasks: int = 3
    ratio: float = 0.5


def thresholds(general: Mapping[str, Any]) -> Thresholds:
    raw = general.get("degraded_location") or {}
    return Thresholds(
        int(raw.get("min_tasks", Thresholds.min_tasks)), float(raw.get("ratio", Thresholds.ratio))
    )


@dataclass(frozen=True)
class Assessment:
    location: str
    degraded: bool
    reason: str


def assess(
    seen: Mapping[str, Mapping[str, str]], t: Thresholds, degraded: set[str]
) -> dict[str, Assessment]:
    """Each location's verdict from ``seen`` (task → location → latest severity), given the
    locations degraded so far; a location missing from the result keeps its state."""
    shared: dict[str, int] = {}
    blamed: dict[str, int] = {}
    for by_location in seen.values():
        if len(by_location) < 2:
            continue
        for loc, severity in by_location.items():
            others = [s for other, s in by_location.items() if other != loc]
            shared[loc] = shared.get(loc, 0) + 1
            if severity != OK and OK in others:
                blamed[loc] = blamed.get(loc, 0) + 1
    out = {}
    for loc, n in shared.items():
        if n < t.min_tasks:
            continue
        share = blamed.get(loc, 0) / n
        was = loc in degraded
        now = share >= t.ratio if not was else share >= t.ratio / 2
        why = (
            f"{blamed.get(loc, 0)} of {n} tasks fail from {loc} while another location sees "
            f"them ok (degraded from {t.ratio:.0%}, healthy under {t.ratio / 2:.0%})"
        )
        out[loc] = Assessment(loc, now, why)
    return out


def counted(severities: Mapping[str, S], degraded: set[str]) -> dict[str, S]:
    """The locations whose results count: all but the degraded ones, unless that leaves
    none (then a degraded location is still better than no verdict)."""
    kept = {loc: s for loc, s in severities.items() if loc not in degraded}
    return kept or dict(severities)
