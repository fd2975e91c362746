"""The configuration: Argos's YAML format, validated strictly, turned into tasks.

Every problem names the file, line, column and key path; nothing of an
invalid file is used. Task and group identities are derived from what makes
them, so they survive reordering and reloads.

Targets are ``http(s)://`` websites with ``paths``, as in Argos, or (beyond
Argos) other targets (``tcp://``, ``tls://``, ``smtp://``, ``dns://``, ``icmp://``,
``ws://``, ``rdap://``, …: configuration/targets.py) with ``checks`` directly on
the website: there is no path nor method to those.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from configuration import (
    dependencies,
    hostnames,
    paths,
    requests,
    sections,
    serverkeys,
    statuspages,
    targets,
    websites,
    weburl,
)
from configuration import hosts as hostsection
from configuration.reader import FAILED, Reader, join, plain
from configuration.settings import Settings, default_timeout, read_settings
from configuration.yamlsource import ConfigError, Located, Problem, contents, read
from events.types import RequestData, TaskDef
from events.values import parse_duration, positive

SEVERITY_NAMES = sections.SEVERITY_NAMES
GENERAL_KEYS = sections.GENERAL_KEYS
WEBSITE_KEYS = {
    "domain",
    "frequency",
    "recheck_delay",
    "retry_before_notification",
    "ipv4",
    "ipv6",
    "add_alerts_recipients",
    "overwrite_alerts_recipients",
    "paths",
    "timeout",
    "locations",
    "quorum",
    "maintenance",
    "checks",
    "depends_on",
}
TOP_KEYS = {
    "general",
    "service",
    "ssl",
    "recurring_tasks",
    "websites",
    "hosts",
    "status_pages",
}


@dataclass
class Config:
    source: str
    digest: str
    tasks: dict[str, TaskDef]
    #: ``general`` as plain data (alerts, mail, gotify, apprise, … for the notifier and web).
    general: dict[str, Any]
    ssl_thresholds: list[tuple[float, str]]
    secrets: set[str] = field(default_factory=set)
    #: Each website's own keys beyond its tasks (alert recipients, maintenance), by domain.
    websites: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``service.secrets``: the tokens Argos agents present.
    agent_tokens: list[str] = field(default_factory=list)
    #: ``recurring_tasks``, durations in seconds.
    recurring: dict[str, Any] = field(default_factory=dict)
    #: Thresholds for the agents' host figures; None: hosts are observed, not judged.
    hosts: hostsection.HostsConfig | None = None
    #: What is valid but probably not what was meant (``config check`` prints them).
    warnings: list[Problem] = field(default_factory=list)
    #: Public status pages (configuration/statuspages.py), for the web.
    status_pages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def locations(self) -> list[str]:
        return sorted({loc for t in self.tasks.values() for loc in t.locations}) or ["default"]


def _digest(*parts: Any) -> str:
    raw = msgspec.json.encode(parts, order="sorted")
    return hashlib.sha256(raw).hexdigest()[:16]


def group_id(url: str, method: str, ip_version: int, data: RequestData | None) -> str:
    return _digest("group", url, method, ip_version, data)


def task_id(
    url: str, method: str, ip_version: int, data: RequestData | None, check: str, expected: Any
) -> str:
    return _digest("task", url, method, ip_version, data, check, expected)


def _add(
    out: websites.Builder,
    domain: str,
    url: str,
    method: str,
    data: RequestData | None,
    checks: list[paths.Check],
    s: Settings,
) -> None:
    # One group id string per group, shared by its tasks (the scheduler keeps them all).
    groups = {
        ip: group_id(url, method, ip, data)
        for ip in ((4,) if s.ipv4 else ()) + ((6,) if s.ipv6 else ())
    }
    for check in checks:
        for ip, group in groups.items():
            tid = task_id(url, method, ip, data, check.kind, check.expected)
            task = TaskDef(
                id=tid,
                group=group,
                domain=domain,
                url=url,
                method=method,
                ip_version=ip,
                check=check.kind,
                expected=check.expected,
                frequency=s.frequency,
                recheck_delay=s.recheck_delay,
                retry_before_notification=s.retry_before_notification,
                request_data=data,
                timeout=s.timeout if s.timeout is not None else default_timeout(url),
                locations=s.locations,
            )
            out.add(task, check.where, check.path)


def _website(
    r: Reader, wpath: str, wnode: Located, base: Settings, channels: Any, out: websites.Builder
) -> tuple[str, dict[str, Any]] | None:
    w = r.mapping(wnode, wpath, WEBSITE_KEYS, ("domain",))
    settings = read_settings(r, w, wpath, base)
    for key in ("add_alerts_recipients", "overwrite_alerts_recipients"):
        if key in w and w[key].value is not None:  # Argos: optional, empty is none
            sections.recipients(r, w[key], join(wpath, key), channels)
    if "maintenance" in w:
        sections.maintenance(r, w["maintenance"], join(wpath, "maintenance"))
    if "quorum" in w:
        r.convert(w["quorum"], join(wpath, "quorum"), positive)
    target = (
        r.convert(w["domain"], join(wpath, "domain"), weburl.website, public=True)
        if "domain" in w
        else FAILED
    )
    if target is FAILED:
        return None
    parts = urlsplit(target)
    domain = parts.netloc
    host = targets.connected_host(target)
    versions = hostnames.ip_versions(
        r, w["domain"], join(wpath, "domain"), host, settings.ipv4, settings.ipv6
    )
    if versions is None:
        return None
    settings = replace(settings, ipv4=versions[0], ipv6=versions[1])
    extra = {
        k: plain(v)
        for k, v in w.items()
        if k in ("add_alerts_recipients", "overwrite_alerts_recipients", "maintenance", "quorum")
        and v.value is not None
    }
    if parts.scheme in targets.SCHEMES:
        if "paths" in w:
            r.fail(
                wnode.key_where["paths"],
                join(wpath, "paths"),
                f"a {parts.scheme}:// target has no paths: put its checks under the website",
            )
        if "checks" not in w:
            r.fail(wnode.where, join(wpath, "checks"), "required key is missing")
            return domain, extra
        checks = paths.checks(r, w["checks"], join(wpath, "checks"), parts.scheme)
        targets.one_monitor_per_ping_url(r, w["checks"], join(wpath, "checks"), checks, out.pings)
        if parts.scheme in targets.ONE_IP_VERSION:
            # One task, over IPv4 unless the website wants IPv6 only.
            settings.ipv6 = not settings.ipv4
        _add(out, domain, target, parts.scheme.upper(), None, checks, settings)
        return domain, extra
    if "checks" in w:
        r.fail(
            wnode.key_where["checks"],
            join(wpath, "checks"),
            "checks of an http(s):// website go under paths (checks directly under the "
            "website are for tcp://, tls:// and the other targets of docs/monitors.md)",
        )
    if "paths" not in w:
        r.fail(wnode.where, join(wpath, "paths"), "required key is missing")
    for pi, pnode in enumerate(r.items(w["paths"], join(wpath, "paths")) if "paths" in w else []):
        ppath = join(wpath, f"paths[{pi}]")
        p = r.mapping(pnode, ppath, paths.PATH_KEYS, ("path", "checks"))
        rel = r.convert(p["path"], join(ppath, "path"), paths.url_path) if "path" in p else FAILED
        method = (
            r.convert(p["method"], join(ppath, "method"), paths.method) if "method" in p else "GET"
        )
        data = (
            paths.request_data(r, p["request_data"], join(ppath, "request_data"))
            if "request_data" in p and p["request_data"].value is not None
            else None
        )
        checks = (
            paths.checks(r, p["checks"], join(ppath, "checks"), parts.scheme)
            if "checks" in p
            else []
        )
        if rel is FAILED or method is FAILED:
            continue
        url = weburl.join(target, rel)
        _add(out, domain, url, method, data, checks, settings)
    return domain, extra


def parse(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a configuration file; raise ConfigError listing every problem."""
    env = dict(os.environ) if env is None else env  # the same for both reads
    raw = contents(path)  # once: a pipe (``/dev/stdin``, ``-``) is empty the second time
    # First without places, equal values shared: a 100,000-task file's tree takes 20 MB, not
    # 130 (the scheduler's peak at start); again with places only to report something.
    try:
        found = _parse(path, env, positions=False, raw=raw)
    except ConfigError:
        pass
    else:
        if not found.warnings:
            return found
        del found  # not held through the second read: its peak is its own
    return _parse(path, env, positions=True, raw=raw)


def _parse(
    path: str | Path, env: dict[str, str], positions: bool, raw: bytes | None = None
) -> Config:
    raw = contents(path) if raw is None else raw
    warnings: list[Problem] = []
    root, problems = read(path, env, positions, raw, warnings)
    if root.value is None and problems:
        raise ConfigError(problems)
    r = Reader()
    r.problems += problems
    r.warnings += warnings
    top = r.mapping(root, "", TOP_KEYS, required=("general", "websites"))
    general = (
        r.mapping(top["general"], "general", GENERAL_KEYS, ("frequency",))
        if "general" in top
        else {}
    )
    base = read_settings(r, general, "general", Settings())
    general_data, channels = sections.general(r, general)
    ssl = r.mapping(top["ssl"], "ssl", {"thresholds"}) if "ssl" in top else {}
    thresholds = serverkeys.thresholds(r, ssl.get("thresholds"))
    agent_tokens = serverkeys.service(r, top["service"]) if "service" in top else []
    recurring = (
        serverkeys.recurring_tasks(r, top["recurring_tasks"]) if "recurring_tasks" in top else {}
    )
    hosts = hostsection.parse(r, top["hosts"], channels) if "hosts" in top else None
    builder = websites.Builder(r)
    sites = websites.Websites(r)
    depends: list[tuple[str, str, Located]] = []
    for wpath, wnode in websites.nodes(r, top["websites"]) if "websites" in top else []:
        found = _website(r, wpath, wnode, base, channels, builder)
        if found is not None:
            depends += sites.take(found[0], found[1], wnode, wpath)
    extras = sites.extras()
    requests.check(r, builder.tasks, builder.declared)
    for domain, entries in dependencies.check(r, depends, builder.tasks).items():
        extras[domain]["depends_on"] = entries
    pages = (
        statuspages.status_pages(r, top["status_pages"], builder.tasks)
        if "status_pages" in top
        else []
    )
    if r.problems:
        # In reading order: the main file first, then each included file, line by line.
        main = str(path)
        raise ConfigError(
            sorted(
                r.problems,
                key=lambda p: (p.where.file != main, p.where.file, p.where.line, p.where.col),
            )
        )
    return Config(
        source=str(path),
        digest=hashlib.sha256(raw).hexdigest(),
        tasks=builder.tasks,
        general=general_data,
        ssl_thresholds=thresholds,
        secrets=r.secrets,
        websites=extras,
        agent_tokens=agent_tokens,
        recurring=recurring,
        hosts=hosts,
        warnings=r.warnings,
        status_pages=pages,
    )


__all__ = [
    "Config",
    "ConfigError",
    "Problem",
    "Settings",
    "group_id",
    "parse",
    "parse_duration",
    "task_id",
]
