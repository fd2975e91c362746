"""What the notifier needs from the configuration file, read and checked on its own.

The scheduler's parser validates the file and yields the tasks and ``general``;
the notifier re-reads the parts only it uses (per-website recipients and
maintenance, ``recurring_tasks.time_without_agent``), so routing lives here and
the task definitions in the log carry no alerting details.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from checks import degraded as probes
from configuration import config as configuration
from configuration import dependencies, redaction
from configuration.hosts import HostsConfig
from configuration.maintenance import Window, parse_windows
from configuration.sections import unknown_channel
from events.types import TaskDef
from events.values import bounded_duration
from services.notifier.ratelimit import RateLimit

SEVERITIES = ("ok", "warning", "critical", "unknown", "no_agent")
TASK_SEVERITIES = SEVERITIES[:4]
DEFAULT_TIME_WITHOUT_AGENT = 300.0  # Argos's default: 5 minutes


@dataclass(frozen=True)
class Target:
    """One channel to tell for a severity; ``after``: consecutive failures it waits for
    (escalation, as Gatus's per-alert failure threshold)."""

    channel: str
    after: int = 0


@dataclass
class WebsiteRouting:
    add: dict[str, list[Target]] = field(default_factory=dict)
    overwrite: dict[str, list[Target]] = field(default_factory=dict)
    add_mail: list[str] = field(default_factory=list)
    overwrite_mail: list[str] | None = None
    maintenance: list[Window] = field(default_factory=list)


@dataclass
class NotifySettings:
    alerts: dict[str, list[Target]] = field(default_factory=dict)
    mail: dict[str, Any] | None = None
    gotify: list[dict[str, Any]] = field(default_factory=list)
    apprise: dict[str, list[str]] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``general.channels.NAME.rate_limit``, by channel name (``webhook:ops``).
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    #: ``general.channels.NAME.group_window`` in seconds, by channel name.
    group_windows: dict[str, float] = field(default_factory=dict)
    reminder_interval: float | None = None
    time_without_agent: float = DEFAULT_TIME_WITHOUT_AGENT
    maintenance: list[Window] = field(default_factory=list)
    websites: dict[str, WebsiteRouting] = field(default_factory=dict)
    tasks: dict[str, TaskDef] = field(default_factory=dict)
    #: ``depends_on`` resolved: each task → the tasks it depends on.
    depends: dict[str, set[str]] = field(default_factory=dict)
    #: How a task is named when it blocks another (its URL).
    task_names: dict[str, str] = field(default_factory=dict)
    web_url: str = "http://127.0.0.1:8000"
    #: The ``hosts`` section: host tasks' retries, recipients and maintenance windows.
    hosts: HostsConfig | None = None
    degraded: probes.Thresholds = field(default_factory=probes.Thresholds)


def targets(raw: Any, where: str) -> list[Target]:
    """``[local, mail, {channel: apprise:oncall, after: 10}]`` → targets."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{where}: expected a list of channels")
    out = []
    for item in raw:
        name = item.get("channel") if isinstance(item, dict) else item
        if unknown_channel(name):
            continue  # as Argos: nothing sent there (`config check` warns at its place)
        if isinstance(item, str):
            out.append(Target(_channel(item, where)))
        elif isinstance(item, dict) and set(item) <= {"channel", "after"} and "channel" in item:
            after = item.get("after", 0)
            if isinstance(after, bool) or not isinstance(after, int) or after < 0:
                raise ValueError(f"{where}: 'after' must be a whole number >= 0, got {after!r}")
            out.append(Target(_channel(str(item["channel"]), where), after))
        else:
            raise ValueError(
                f"{where}: {item!r} is not a channel name nor {{channel: NAME, after: N}}"
            )
    return out


def _channel(name: str, where: str) -> str:
    kind, _, option = name.partition(":")
    if (kind in ("local", "mail", "gotify") and not option) or (
        kind in ("apprise", "webhook") and option
    ):
        return name
    raise ValueError(
        f"{where}: unknown channel {name!r} (local, mail, gotify, apprise:<group>, webhook:<name>)"
    )


def per_severity(raw: Any, where: str) -> tuple[dict[str, list[Target]], list[str] | None]:
    """A severity → channels mapping; a ``mail`` key lists extra addresses for a website.
    Argos's plain list of channels applies to every severity a task can take."""
    if raw is None:
        return {}, None
    if isinstance(raw, list):
        return {sev: targets(raw, where) for sev in TASK_SEVERITIES}, None
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping of severity to channels")
    out: dict[str, list[Target]] = {}
    mail: list[str] | None = None
    for key, value in raw.items():
        if key == "mail":
            if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
                raise ValueError(f"{where}.mail: expected a list of addresses")
            mail = list(value)
        elif key in SEVERITIES:
            out[key] = targets(value, f"{where}.{key}")
        else:
            raise ValueError(f"{where}: unknown severity {key!r} ({', '.join(SEVERITIES)})")
    return out, mail


def load(path: str, web_url: str | None = None) -> NotifySettings:
    """Parse ``path`` (raising the scheduler's ConfigError or ValueError on problems)."""
    return from_config(configuration.parse(path), web_url)


def from_config(cfg: configuration.Config, web_url: str | None = None) -> NotifySettings:
    """What the notifier runs of ``cfg`` (a file's, or the one in force in the log).

    The notifier never sends a request: it keeps no request secret, and every domain and URL
    is as the log shows it (``redaction.domain_key``), whatever the settings came from. So a
    website whose domain carries credentials is one key for its tasks, its recipients, its
    maintenance, ``depends_on`` and the silences the CLI records (in that form too); a
    message's domain, which the sender routes by, is that key."""
    tasks = {k: redaction.redact(t, cfg.secrets) for k, t in cfg.tasks.items()}

    def key(domain: str) -> str:
        return redaction.domain_key(domain, cfg.secrets)

    depends = {
        key(d): [redaction.public_url(e, cfg.secrets) for e in w["depends_on"]]
        for d, w in cfg.websites.items()
        if w.get("depends_on")
    }
    s = build(cfg.general, tasks, web_url, cfg.hosts, depends)
    if cfg.recurring.get("time_without_agent") is not None:
        s.time_without_agent = float(cfg.recurring["time_without_agent"])
    for domain, extra in cfg.websites.items():
        s.websites[key(domain)] = routing_of(extra, f"websites[domain={key(domain)}]")
    return s


def build(
    general: dict[str, Any],
    tasks: dict[str, TaskDef],
    web_url: str | None = None,
    hosts: HostsConfig | None = None,
    depends: dict[str, list[str]] | None = None,
) -> NotifySettings:
    alerts, _ = per_severity(general.get("alerts"), "general.alerts")
    s = NotifySettings(
        alerts=alerts,
        mail=general.get("mail"),
        gotify=list(general.get("gotify") or []),
        apprise=dict(general.get("apprise") or {}),
        webhooks=dict(general.get("webhooks") or {}),
        degraded=probes.thresholds(general),
        maintenance=parse_windows(general.get("maintenance")),
        tasks=tasks,
        depends=dependencies.resolve(depends or {}, tasks),
        task_names={t.id: dependencies.name_of(t) for t in tasks.values()},
        web_url=(web_url or os.environ.get("TOCSIN_WEB_URL") or NotifySettings.web_url),
    )
    for name, tuning in (general.get("channels") or {}).items():
        if (tuning or {}).get("group_window") is not None:
            s.group_windows[name] = bounded_duration(tuning["group_window"])
        limit = (tuning or {}).get("rate_limit")
        if limit:
            s.rate_limits[name] = RateLimit(int(limit["count"]), bounded_duration(limit["per"]))
    if general.get("reminder_interval") is not None:
        s.reminder_interval = bounded_duration(general["reminder_interval"])
    s.hosts = hosts
    return s


def routing_of(site: dict[str, Any], where: str) -> WebsiteRouting:
    """A website's (or a host's) own recipients and maintenance windows."""
    add, add_mail = per_severity(
        site.get("add_alerts_recipients"), f"{where}.add_alerts_recipients"
    )
    over, over_mail = per_severity(
        site.get("overwrite_alerts_recipients"), f"{where}.overwrite_alerts_recipients"
    )
    return WebsiteRouting(
        add=add,
        overwrite=over,
        add_mail=add_mail or [],
        overwrite_mail=over_mail,
        maintenance=parse_windows(site.get("maintenance")),
    )
