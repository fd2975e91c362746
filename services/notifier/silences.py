"""Silences (from the log) and maintenance windows (from the configuration): pure checks."""

from __future__ import annotations

from configuration.maintenance import active
from events.types import SilenceAdded, SilenceRemoved
from services.notifier.settings import NotifySettings


def fold(silences: dict[str, SilenceAdded], ev: SilenceAdded | SilenceRemoved) -> None:
    if isinstance(ev, SilenceAdded):
        silences[ev.id] = ev
    else:
        silences.pop(ev.id, None)


def matching(
    silences: dict[str, SilenceAdded], domain: str | None, task: str | None, at: float
) -> SilenceAdded | None:
    for s in silences.values():
        if not s.starts <= at < s.ends:
            continue
        if s.task is not None and s.task != task:
            continue
        if s.domain is not None and s.domain != domain:
            continue
        return s
    return None


def why_silent(
    s: NotifySettings,
    silences: dict[str, SilenceAdded],
    domain: str | None,
    task: str | None,
    at: float,
) -> str | None:
    """A reason when notifications for this task are held back at ``at``; None otherwise."""
    found = matching(silences, domain, task, at)
    if found is not None:
        return f"silence {found.id}: {found.reason}"
    window = active(s.maintenance, at)
    site = s.websites.get(domain or "")
    if window is None and site is not None:
        window = active(site.maintenance, at)
    if window is not None:
        return f"maintenance window{': ' + window.reason if window.reason else ''}"
    return None
