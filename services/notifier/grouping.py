"""Grouping: many tasks of one domain (or behind one dependency) changing within a channel's
``group_window`` make one notification listing them, not one each. Pure functions; the
outbox (store.py) holds the rows of an open window and the sender (sender.py) sends them
as one message when the window closes.

A row joins the group of its channel, recipient, family (alerts and reminders apart from
recoveries, and from tasks no longer monitored) and what the tasks share: their first
dependency if they have one (so the dependants a failing database releases together are
told together), else their domain.
The first row of a group opens the window; rows arriving before it closes go out with it.
"""

from __future__ import annotations

from services.notifier.message import Member, Message
from services.notifier.settings import NotifySettings

ORDER = {"critical": 3, "unknown": 2, "warning": 1, "ok": 0}


def shared(s: NotifySettings, task: str | None, domain: str | None) -> str:
    """What a task's notifications are grouped by: ``behind X`` or its domain."""
    deps = sorted(s.task_names.get(d, d) for d in s.depends.get(task or "", ()))
    return f"behind {deps[0]}" if deps else (domain or "no domain")


def group_key(s: NotifySettings, m: Message) -> str:
    family = m.kind if m.kind in ("recovery", "removed") else "failure"
    return f"{family}|{shared(s, m.task, m.domain)}"


def deadline(open_until: float | None, now: float, window: float) -> float:
    """When a row sent to a group goes out: with the open window, or a new one from now."""
    if open_until is not None and open_until > now:
        return open_until
    return now + window


def combine(ms: list[Message], label: str) -> Message:
    """One message for several rows of a group (one row: itself, unchanged)."""
    if len(ms) == 1:
        return ms[0]
    ms = sorted(ms, key=lambda m: (-ORDER.get(m.severity, 0), m.url or "", m.task or ""))
    first = ms[0]
    kinds = {m.kind for m in ms}
    return Message(
        key=first.key,
        kind=first.kind if len(kinds) == 1 else "alert",
        severity=first.severity,
        at=max(m.at for m in ms),
        previous=None,
        domain=first.domain if len({m.domain for m in ms}) == 1 else None,
        web_url=first.web_url,
        group=label.split("|", 1)[1],
        members=[
            Member(m.task or "?", m.severity, m.previous, m.url, m.check, m.ip_version, m.reason)
            for m in ms
        ],
    )
