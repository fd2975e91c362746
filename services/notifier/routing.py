"""Who is told: pure functions from the settings to channels and recipients."""

from __future__ import annotations

from services.notifier.settings import NotifySettings, Target


def channels_for(s: NotifySettings, domain: str | None, severity: str) -> list[Target]:
    """``general.alerts[severity]``, replaced by a website's ``overwrite_alerts_recipients``
    or extended by its ``add_alerts_recipients`` (a channel appears once: the first
    mention wins, so a general channel keeps its escalation threshold)."""
    site = s.websites.get(domain or "")
    if site and severity in site.overwrite:
        chosen = list(site.overwrite[severity])
    else:
        chosen = list(s.alerts.get(severity, []))
        if site:
            chosen += site.add.get(severity, [])
    seen: set[str] = set()
    out = []
    for t in chosen:
        if t.channel not in seen:
            seen.add(t.channel)
            out.append(t)
    return out


def mail_addresses(s: NotifySettings, domain: str | None) -> list[str]:
    base = list((s.mail or {}).get("addresses") or [])
    site = s.websites.get(domain or "")
    if site and site.overwrite_mail is not None:
        return list(site.overwrite_mail)
    if site:
        base += [a for a in site.add_mail if a not in base]
    return base
