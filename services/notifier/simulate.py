"""The notifier's decisions over a sequence of events, in memory: what ``tocsin replay``
runs over the log with a proposed configuration, and what the decision tables drive.

It folds the same pure functions as the live notifier (judgement.py) with the state the
live one keeps in PostgreSQL kept here in dicts; it sends nothing and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.types import (
    IncidentAcknowledged,
    Judgement,
    SilenceAdded,
    SilenceRemoved,
    TaskJudged,
)
from services.notifier.decide import Intent, TaskState
from services.notifier.judgement import Outcome, on_judgement
from services.notifier.settings import NotifySettings
from services.notifier.silences import fold as fold_silence


@dataclass(frozen=True)
class Decision:
    """One notification the decisions call for (one per channel, before recipients)."""

    seq: int
    at: float
    task: str
    channel: str
    kind: str
    severity: str
    previous: str | None


@dataclass
class Simulation:
    settings: NotifySettings
    silences: dict[str, SilenceAdded] = field(default_factory=dict)
    states: dict[str, TaskState] = field(default_factory=dict)
    severities: dict[str, str] = field(default_factory=dict)
    acks: dict[str, IncidentAcknowledged] = field(default_factory=dict)
    held: list[tuple[int, Outcome]] = field(default_factory=list)

    def apply(self, seq: int, ev: object) -> list[Decision]:
        if isinstance(ev, SilenceAdded | SilenceRemoved):
            fold_silence(self.silences, ev)
            return []
        if isinstance(ev, IncidentAcknowledged):
            self.acks[ev.task] = ev
            return []
        if not isinstance(ev, TaskJudged):
            return []
        out: list[Decision] = []
        for j in ev.judgements:
            out += self.judge(seq, ev.at, j, ev.group)
        return out

    def judge(self, seq: int, at: float, j: Judgement, group: str = "") -> list[Decision]:
        state = self.states.get(j.task, TaskState())
        o = on_judgement(
            self.settings, self.silences, at, j, state, self.severities, self.acks, group
        )
        o.state.last_seq = seq
        self.states[j.task] = o.state
        self.severities[j.task] = j.severity
        if o.held and j.severity != (j.previous or "ok"):
            self.held.append((seq, o))
        return [_decision(seq, at, j.task, i) for i in o.intents]


def _decision(seq: int, at: float, task: str, i: Intent) -> Decision:
    return Decision(seq, at, task, i.channel, i.kind, i.severity, i.previous)
