"""Should we notify? Pure decisions from one judgement and what each channel was told.

``failures`` in a judgement counts consecutive non-ok results (the scheduler
resets it on ok), so a success between two failures restarts the count: the
alert goes out on the ``retry_before_notification + 1``-th consecutive failure,
or later for a channel that asks for more (escalation). A recovery goes to the
``ok`` channels only when someone was told of the failure, and never to an
escalated channel that was not. A silenced judgement changes nothing, so the
alert (or recovery) goes out at the first judgement after the silence if the
task is still in that state. An acknowledged failure gets no reminder and no
escalation; a change of severity (or a recovery) is news again.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from services.notifier.settings import Target

FAILURE_SEVERITIES = ("warning", "critical", "unknown")


class Told(msgspec.Struct, frozen=True):
    severity: str
    at: float


class TaskState(msgspec.Struct):
    """What each channel was last told about a task in the current failure episode, and the
    task's severity since when (an acknowledgement counts for the episode it was made in)."""

    last_seq: int = 0
    told: dict[str, Told] = {}
    severity: str = "ok"
    since: float = 0.0


class Intent(msgspec.Struct, frozen=True):
    channel: str
    kind: str  # alert | reminder | recovery
    severity: str
    previous: str | None


def decide(
    severity: str,
    failures: int,
    at: float,
    retry: int,
    targets: Callable[[str], list[Target]],
    state: TaskState,
    reminder_interval: float | None = None,
    silenced: bool = False,
    acknowledged: bool = False,
) -> tuple[list[Intent], dict[str, Told]]:
    """The notifications one judgement calls for, and what each channel has been told after."""
    if silenced or (acknowledged and severity != "ok"):
        return [], state.told
    if severity == "ok":
        if not state.told:
            return [], {}
        escalated = {t.channel for sev in FAILURE_SEVERITIES for t in targets(sev) if t.after}
        worst = _previous(state.told)
        intents = [
            Intent(t.channel, "recovery", "ok", worst)
            for t in targets("ok")
            if t.channel in state.told or t.channel not in escalated
        ]
        return intents, {}
    told = dict(state.told)
    intents = []
    for t in targets(severity):
        if failures < max(retry + 1, t.after):
            continue
        before = told.get(t.channel)
        if before is None or before.severity != severity:
            intents.append(
                Intent(t.channel, "alert", severity, before.severity if before else "ok")
            )
        elif reminder_interval and at - before.at >= reminder_interval:
            intents.append(Intent(t.channel, "reminder", severity, before.severity))
        else:
            continue
        told[t.channel] = Told(severity, at)
    return intents, told


def _previous(told: dict[str, Told]) -> str:
    order = {"critical": 3, "unknown": 2, "warning": 1}
    return max((t.severity for t in told.values()), key=lambda s: order.get(s, 0))


def decide_no_agent(
    last_seen: float | None, started: float, now: float, limit: float, alerted: bool
) -> str | None:
    """``no_agent`` once when no agent was seen for ``limit`` seconds, ``agents_back`` once
    when one is seen again after that alert; otherwise nothing (Argos repeats every minute).
    The silence counts from the last heartbeat or, when later, from ``started``: the time no
    notifier watched (everything stopped together, as a stopped ``tocsin dev``) is not the
    agents' silence, so a restart alerts nothing at once; nor does it lower a raised alert:
    only a heartbeat seen within ``limit`` does."""
    if alerted:
        seen = last_seen is not None and now - last_seen < limit
        return "agents_back" if seen else None
    since = started if last_seen is None else max(last_seen, started)
    return "no_agent" if now - since >= limit else None
