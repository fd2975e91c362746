"""What-if: the judge and the notification decisions re-run over recorded events with a
proposed configuration, compared with what really was sent. Pure: ``replay.py`` reads the
log and prints; nothing here reads or writes anything.

Re-judging needs the agent's outcome for each task, so a task whose check or expected value
changed (a new task id) was never evaluated and cannot be replayed: it is listed. A task
checked from several locations is combined across them as the scheduler does
(checks/quorum.py), with the proposed quorum and degraded-location thresholds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from checks.judge import GroupState, TaskState, apply, judge, no_result
from checks.quorum import LocationMemory
from events.types import CheckCompleted, Judgement, NotificationSent, TaskDef, TaskJudged
from services.notifier.settings import NotifySettings
from services.notifier.simulate import Decision, Simulation


@dataclass
class WhatIf:
    actual: list[Decision] = field(default_factory=list)
    proposed: list[Decision] = field(default_factory=list)
    #: Task ids of the proposed configuration that could not be replayed, and why.
    skipped: dict[str, str] = field(default_factory=dict)


def run(
    s: NotifySettings,
    thresholds: list[tuple[float, str]],
    events: list[tuple[int, object]],
    since: float,
    quorum: Callable[[str], int | None] = lambda domain: None,
) -> WhatIf:
    """``events``: (stream sequence, event) in log order, silences and acknowledgements
    included from before ``since`` (they may still be in force); ``quorum``: a domain's."""
    out = WhatIf()
    sim = Simulation(s)
    states: dict[str, TaskState] = {}
    locations = LocationMemory()
    judged_at: dict[int, float] = {}
    recorded: set[str] = set()
    sent: set[tuple[int, str, str | None, str]] = set()
    for seq, ev in events:
        at = getattr(ev, "at", 0.0)
        if isinstance(ev, TaskJudged):
            judged_at[seq] = ev.at
            recorded |= {j.task for j in ev.judgements}
        if isinstance(ev, CheckCompleted):
            recorded |= {o.task for o in ev.outcomes}
        if isinstance(ev, CheckCompleted | TaskJudged | NotificationSent) and at < since:
            continue
        if isinstance(ev, NotificationSent):
            # One per recipient in the log; the decisions are per channel.
            k = (ev.source_seq, ev.channel, ev.task, ev.kind)
            if ev.task is not None and ev.source_seq and k not in sent:
                sent.add(k)
                when = judged_at.get(ev.source_seq, ev.at)
                out.actual.append(
                    Decision(
                        ev.source_seq, when, ev.task, ev.channel, ev.kind, ev.severity, ev.previous
                    )
                )
            continue
        if isinstance(ev, CheckCompleted):
            tasks = _replayable(s, ev.group, {o.task for o in ev.outcomes}, out)
            if tasks:
                verdict = judge(tasks, states, GroupState(), ev, seq, thresholds)
                verdict = locations.combine(
                    tasks, states, ev.location, verdict, quorum(tasks[0].domain), s.degraded
                )
                apply(states, verdict)
                out.proposed += sim.apply(seq, verdict)
            continue
        if isinstance(ev, TaskJudged) and ev.completion == 0:
            # No result came back in time: the same "unknown", counted with the proposed state.
            tasks = _replayable(s, ev.group, {j.task for j in ev.judgements}, out)
            if tasks:
                verdict = no_result(tasks, states, ev.at, "", next_run=0)
                verdict.judgements = [
                    Judgement(j.task, j.severity, j.previous, _reason(ev, j.task), j.failures)
                    for j in verdict.judgements
                ]
                apply(states, verdict)
                out.proposed += sim.apply(seq, verdict)
            continue
        sim.apply(seq, ev)
    for t in s.tasks.values():
        if t.id not in recorded and t.id not in out.skipped:
            out.skipped[t.id] = "never judged in this period (new, or its check changed)"
    return out


def _replayable(s: NotifySettings, group: str, seen: set[str], out: WhatIf) -> list[TaskDef]:
    tasks = []
    for t in s.tasks.values():
        if t.group != group:
            continue
        if t.id in seen:
            tasks.append(t)
    return tasks


def _reason(ev: TaskJudged, task: str) -> str:
    return next((j.reason for j in ev.judgements if j.task == task), "no result")


@dataclass(frozen=True)
class Row:
    """One line of the comparison: ``same``, ``not sent`` (happened, would not),
    ``would be sent`` (did not happen, would) or ``moved`` (would happen at ``proposed_at``)."""

    verdict: str
    task: str
    channel: str
    kind: str
    severity: str
    actual_at: float | None
    proposed_at: float | None


def compare(actual: list[Decision], proposed: list[Decision], tolerance: float = 1.0) -> list[Row]:
    """Pair each notification that happened with one the proposal makes for the same task,
    channel, kind and severity: at the same time (``tolerance`` seconds) first, then each
    remaining proposed one with the nearest remaining real one ("moved")."""
    rows: list[Row] = []
    for key in {_key(d) for d in actual} | {_key(d) for d in proposed}:
        a = sorted(d.at for d in actual if _key(d) == key)
        p = sorted(d.at for d in proposed if _key(d) == key)
        pairs: list[tuple[float | None, float | None, str]] = []
        for tp in list(p):
            same = next((ta for ta in a if abs(ta - tp) <= tolerance), None)
            if same is not None:
                a.remove(same)
                p.remove(tp)
                pairs.append((same, tp, "same"))
        for tp in list(p):
            if not a:
                break
            near = min(a, key=lambda ta: abs(ta - tp))
            a.remove(near)
            p.remove(tp)
            pairs.append((near, tp, "moved"))
        pairs += [(ta, None, "not sent") for ta in a] + [(None, tp, "would be sent") for tp in p]
        rows += [Row(v, *key, ta, tp) for ta, tp, v in pairs]
    return sorted(rows, key=lambda r: (_first(r), r.task, r.channel, r.kind, r.actual_at is None))


def _first(r: Row) -> float:
    return min(x for x in (r.actual_at, r.proposed_at) if x is not None)


def _key(d: Decision) -> tuple[str, str, str, str]:
    return d.task, d.channel, d.kind, d.severity
