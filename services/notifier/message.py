"""What a notification says: one struct stored in the outbox, rendered per channel."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import msgspec

from events.types import NotificationFailed, NotificationSent

SYMBOLS = {"ok": "✅", "warning": "⚠️", "critical": "❌", "unknown": "❔", "no_agent": "🚨"}
KIND_WORDS = {"alert": "is now", "reminder": "is still", "recovery": "is back to", "test": "test:"}


class Member(msgspec.Struct, omit_defaults=True):
    """One task of a grouped notification."""

    task: str
    severity: str
    previous: str | None = None
    url: str | None = None
    check: str | None = None
    ip_version: int | None = None
    reason: str = ""


class Message(msgspec.Struct, omit_defaults=True):
    key: str
    kind: str
    severity: str
    at: float
    previous: str | None = None
    task: str | None = None
    domain: str | None = None
    url: str | None = None
    check: str | None = None
    expected: str | None = None
    ip_version: int | None = None
    reason: str = ""
    failures: int = 0
    source_seq: int = 0
    web_url: str = ""
    #: A grouped notification: every task it stands for (``group`` names what they share).
    members: list[Member] = []
    group: str | None = None


def subject(m: Message) -> str:
    symbol = SYMBOLS.get(m.severity, "")
    if m.kind == "no_agent":
        return f"[Tocsin] {SYMBOLS['no_agent']} no agent has reported for a while"
    if m.kind == "agents_back":
        return f"[Tocsin] {SYMBOLS['ok']} agents are reporting again"
    if m.kind == "location_degraded":
        sym = SYMBOLS["no_agent"]
        return f"[Tocsin] {sym} location {m.group} is degraded: its results do not count"
    if m.kind == "location_healthy":
        return f"[Tocsin] {SYMBOLS['ok']} location {m.group} is healthy again: its results count"
    if m.kind == "test":
        return f"[Tocsin] {symbol} test notification ({m.severity})"
    if m.members:
        word = {"recovery": "are back to", "reminder": "are still"}.get(m.kind, "are now")
        if m.kind == "removed":  # removed from the configuration while not ok (retire.py)
            return f"[Tocsin] {symbol} {len(m.members)} tasks of {m.group} are no longer monitored"
        return f"[Tocsin] {symbol} {len(m.members)} tasks of {m.group} {word} {m.severity}"
    # The URL, not only the domain: several paths of one site must be told apart in an inbox.
    target = m.url or m.domain
    what = f"{target} ({m.check}, IPv{m.ip_version})" if target else (m.task or "?")
    if m.check == "host":  # a host's figure: which one is in the reason
        what = f"{m.domain}: {m.reason}"
    if m.kind == "removed":
        return f"[Tocsin] {symbol} {what} is no longer monitored"
    return f"[Tocsin] {symbol} {what} {KIND_WORDS.get(m.kind, '')} {m.severity}".replace("  ", " ")


def body(m: Message) -> str:
    when = dt.datetime.fromtimestamp(m.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if m.members:
        return _grouped_body(m)
    if m.kind in ("no_agent", "agents_back", "test", "location_degraded", "location_healthy"):
        lines = [subject(m).removeprefix("[Tocsin] "), "", m.reason, "", f"At: {when}"]
        if m.web_url:
            lines.append(f"Dashboard: {m.web_url}/")
        return "\n".join(lines)
    lines = [
        f"{SYMBOLS.get(m.severity, '')} {m.severity.upper()} — {m.domain or m.task}",
        "",
        f"URL: {m.url}",
        f"Check: {m.check}" + (f" (expected: {m.expected})" if m.expected else ""),
        f"IP version: IPv{m.ip_version}",
        f"Previous state: {SYMBOLS.get(m.previous or '', '')} {m.previous or 'none'}".replace(
            "  ", " "
        ),
        f"Reason: {m.reason}" if m.reason else "",
        f"Consecutive non-ok results: {m.failures}" if m.severity != "ok" else "",
        f"At: {when}",
    ]
    found = links(m)
    if found:
        lines += [
            "",
            f"Task: {found['task']}",
            f"Results: {found['results']}",
            f"Judgement: {found['judgement']}",
        ]
    return "\n".join(line for line in lines if line is not None).replace("\n\n\n", "\n\n")


def task_page(web_url: str, task: str) -> str:
    return f"{web_url}/tasks/{quote(task, safe=':')}"


def links(m: Message) -> dict[str, str]:
    """The web pages a message about a task points to: the task's page, and its sections
    of results and of incidents (where the judgement's episode is). None without a task or
    a web URL."""
    if not (m.web_url and m.task):
        return {}
    task = task_page(m.web_url, m.task)
    return {"task": task, "results": f"{task}#results", "judgement": f"{task}#incidents"}


def _grouped_body(m: Message) -> str:
    when = dt.datetime.fromtimestamp(m.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [subject(m).removeprefix("[Tocsin] "), ""]
    for x in m.members:
        what = f"{x.url} ({x.check}, IPv{x.ip_version})" if x.url else x.task
        lines.append(
            f"- {SYMBOLS.get(x.severity, '')} {x.severity} {what}: {x.reason}".rstrip(": ")
        )
        if m.web_url:
            lines.append(f"  {task_page(m.web_url, x.task)}")
    lines += ["", f"At: {when}"]
    return "\n".join(lines)


def gotify_priority(m: Message) -> int:
    return {"critical": 8, "unknown": 6, "warning": 5, "ok": 2}.get(m.severity, 8)


def outcome(
    m: Message,
    key: str,
    channel: str,
    recipient: str,
    attempt: int,
    at: float,
    error: str | None = None,
    retry_in: float | None = None,
) -> NotificationSent | NotificationFailed:
    """The event recording one send of ``m`` to one recipient: sent, or failed (``final``
    when no retry follows)."""
    if error is None:
        return NotificationSent(
            at=at,
            key=key,
            kind=m.kind,
            channel=channel,
            recipient=recipient,
            severity=m.severity,
            previous=m.previous,
            task=m.task,
            domain=m.domain,
            source_seq=m.source_seq,
            attempt=attempt,
        )
    return NotificationFailed(
        at=at,
        key=key,
        kind=m.kind,
        channel=channel,
        recipient=recipient,
        severity=m.severity,
        error=error[:500],
        attempt=attempt,
        final=retry_in is None,
        retry_at=None if retry_in is None else at + retry_in,
        task=m.task,
        domain=m.domain,
        source_seq=m.source_seq,
    )
