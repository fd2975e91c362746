"""One judgement → what to tell whom: the pure core the live notifier and ``tocsin replay``
share. Everything it needs comes in (settings, silences, the task's state, the severities
of the tasks it depends on); nothing is read or written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from configuration import redaction
from configuration.dependencies import blocked_by
from events.types import IncidentAcknowledged, Judgement, SilenceAdded, TaskDef
from services.notifier.decide import Intent, TaskState, Told, decide
from services.notifier.hosts import host_task
from services.notifier.message import Message
from services.notifier.routing import channels_for
from services.notifier.settings import NotifySettings
from services.notifier.silences import why_silent


@dataclass
class Outcome:
    task: str
    domain: str | None
    intents: list[Intent]
    told: dict[str, Told]
    #: Why notifications are held back now (silence, maintenance, "blocked by X"); None: not.
    held: str | None = None
    blocked: list[str] = field(default_factory=list)
    #: The acknowledgement in force for this judgement, if any.
    acknowledged: IncidentAcknowledged | None = None
    #: The task's state after this judgement (what the caller keeps for the next one).
    state: TaskState = field(default_factory=TaskState)


def acknowledged(
    ack: IncidentAcknowledged | None, severity: str, state: TaskState, at: float
) -> bool:
    """Whether ``ack`` covers a judgement of ``severity`` at ``at``: it was made after the
    current severity began (a change of severity or a recovery starts a new episode)."""
    if ack is None or severity == "ok":
        return False
    since = state.since if severity == state.severity else at
    return ack.at >= since


def definition(
    s: NotifySettings, group: str, task: str, logged: dict[str, TaskDef] | None = None
) -> TaskDef | None:
    """A task of the configuration file, of the configuration in force in the log (``logged``:
    applied from another file, its secrets masked), or of the ``hosts`` section (derived from
    its group)."""
    return s.tasks.get(task) or (logged or {}).get(task) or host_task(s, group, task)


def on_judgement(
    s: NotifySettings,
    silences: dict[str, SilenceAdded],
    at: float,
    j: Judgement,
    state: TaskState,
    severities: dict[str, str],
    acks: dict[str, IncidentAcknowledged] | None = None,
    group: str = "",
    logged: dict[str, TaskDef] | None = None,
) -> Outcome:
    task = definition(s, group, j.task, logged)
    domain = task.domain if task else None
    blocked = blocked_by(j.task, s.depends, severities, s.task_names)
    held = why_silent(s, silences, domain, j.task, at)
    # A dependency holds back news of failure; a recovery of what was told still goes out.
    if held is None and blocked and j.severity != "ok":
        held = "blocked by " + ", ".join(blocked)
    ack = (acks or {}).get(j.task)
    acked = acknowledged(ack, j.severity, state, at)
    intents, told = decide(
        j.severity,
        j.failures,
        at,
        task.retry_before_notification if task else 0,
        lambda sev: channels_for(s, domain, sev),
        state,
        s.reminder_interval,
        held is not None,
        acked,
    )
    since = state.since if j.severity == state.severity else at
    return Outcome(
        j.task,
        domain,
        intents,
        told,
        held,
        blocked,
        ack if acked else None,
        TaskState(state.last_seq, told, j.severity, since),
    )


def message(
    s: NotifySettings,
    at: float,
    seq: int,
    j: Judgement,
    intent: Intent,
    group: str = "",
    logged: dict[str, TaskDef] | None = None,
) -> Message:
    """The message an intent sends (its ``key`` is set per recipient when it is queued)."""
    task = definition(s, group, j.task, logged)
    return Message(
        key="",
        kind=intent.kind,
        severity=intent.severity,
        at=at,
        previous=intent.previous,
        task=j.task,
        domain=None if task is None else redaction.public_url(task.domain),
        url=task.url if task else None,
        check=task.check if task else None,
        expected=None if task is None else str(task.expected),
        ip_version=task.ip_version if task else None,
        reason=j.reason,
        failures=j.failures,
        source_seq=seq,
        web_url=s.web_url,
    )
