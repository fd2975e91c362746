"""The ``hosts`` section: thresholds for the figures agents report about their own machines.

It extends the Argos format the way ``websites`` does: settings for every host at the top
of the section, and a list ``machines`` whose items (``agent: NAME``) override them for one
host. A metric's mapping is merged key by key with the one it overrides, so a host that only
lowers ``disk.warning`` keeps the general ``disk.critical``. Every problem is reported with
its file, line and key path; unknown keys are refused.

    hosts:
      disk: {warning: 80, critical: 90}     # % used, per filesystem
      memory: {critical: 95, for: 5m}       # % used, for at least 5 minutes
      load: {warning: 1}                    # 5-minute load per core: above the core count
      filesystems: {exclude_types: [tmpfs]}
      machines:
        - agent: db1
          disk: {warning: 70}
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any

from configuration import sections
from configuration.reader import (
    FAILED,
    Reader,
    join,
    plain,
    texts,
)
from configuration.yamlsource import Located
from events import subjects
from events.values import bounded_count, bounded_duration

#: ``config.applied`` events of host tasks (on ``tocsin.host.tasks.<agent>``) carry ``source``
#: = this + the agent name: they are the scheduler's, not the file's.
SOURCE_PREFIX = "hosts:"
#: Percentages of use (``load`` is per core, any positive number).
METRICS = ("cpu", "memory", "swap", "load", "disk", "inodes")
THRESHOLD_KEYS = {"warning", "critical", "for"}
FILESYSTEM_KEYS = {"include", "exclude", "include_types", "exclude_types"}
SETTING_KEYS = {
    *METRICS,
    "filesystems",
    "retry_before_notification",
    "add_alerts_recipients",
    "overwrite_alerts_recipients",
    "maintenance",
}
SECTION_KEYS = SETTING_KEYS | {"machines"}
MACHINE_KEYS = SETTING_KEYS | {"agent"}


@dataclass(frozen=True)
class Threshold:
    """Above ``warning`` / ``critical`` (for at least ``for_`` seconds): that severity.
    Neither set: the metric is observed, never judged."""

    warning: float | None = None
    critical: float | None = None
    for_: float = 0.0


@dataclass(frozen=True)
class FsSelect:
    """Which of the reported filesystems are judged: mount-point globs and types. An empty
    ``include`` means every one; an exclusion always wins."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_types: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()

    def judged(self, mount: str, fstype: str) -> bool:
        if any(fnmatch.fnmatchcase(mount, p) for p in self.exclude):
            return False
        if fstype in self.exclude_types:
            return False
        if self.include_types and fstype not in self.include_types:
            return False
        return not self.include or any(fnmatch.fnmatchcase(mount, p) for p in self.include)


#: What a host gets when the configuration says nothing more: the issue's examples.
DEFAULT_THRESHOLDS: dict[str, Threshold] = {
    "cpu": Threshold(warning=90.0, for_=600.0),
    "memory": Threshold(warning=90.0, critical=95.0, for_=300.0),
    "swap": Threshold(warning=80.0, for_=300.0),
    "load": Threshold(warning=1.0, for_=300.0),
    "disk": Threshold(warning=80.0, critical=90.0),
    "inodes": Threshold(warning=80.0, critical=90.0),
}


@dataclass(frozen=True)
class HostRules:
    thresholds: dict[str, Threshold] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    filesystems: FsSelect = field(default_factory=FsSelect)
    retry_before_notification: int = 0
    #: As a website's: plain data for the notifier (recipients, maintenance windows).
    alerting: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HostsConfig:
    defaults: HostRules = field(default_factory=HostRules)
    machines: dict[str, HostRules] = field(default_factory=dict)

    def rules(self, agent: str) -> HostRules:
        return self.machines.get(agent, self.defaults)


def _percent(v: Any) -> float:
    """``80`` or ``"80%"``."""
    raw = v[:-1].strip() if isinstance(v, str) and v.endswith("%") else v
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raw = None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 100:
        raise ValueError(f"expected a percentage from 0 to 100 such as 80 or '80%', got {v!r}")
    return float(raw)


def _per_core(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise ValueError(f"expected a load per core above 0 (1 = as many as cores), got {v!r}")
    return float(v)


def _threshold(r: Reader, node: Located, path: str, metric: str, base: Threshold) -> Threshold:
    if node.value is False:
        return Threshold()  # observed, never judged
    level = _per_core if metric == "load" else _percent
    got = r.fields(node, path, {"warning": level, "critical": level, "for": bounded_duration})
    out = replace(
        base,
        warning=got.get("warning", base.warning),
        critical=got.get("critical", base.critical),
        for_=got.get("for", base.for_),
    )
    if out.warning is not None and out.critical is not None and out.warning > out.critical:
        r.fail(
            node.where,
            path,
            f"warning ({out.warning:g}) is above critical ({out.critical:g}): "
            "the warning would never show",
        )
    return out


def _globs(v: Any) -> tuple[str, ...]:
    found = texts(v)
    for glob in found:
        if not glob.startswith(("/", "*")):
            raise ValueError(f"expected mount points such as / or /srv/*, got {glob!r}")
    return tuple(found)


def _rules(
    r: Reader, m: dict[str, Located], path: str, base: HostRules, channels: Any
) -> HostRules:
    thresholds = dict(base.thresholds)
    for metric in METRICS:
        if metric in m:
            thresholds[metric] = _threshold(
                r, m[metric], join(path, metric), metric, thresholds[metric]
            )
    fs = base.filesystems
    if "filesystems" in m:
        spec = {
            "include": _globs,
            "exclude": _globs,
            "include_types": lambda v: tuple(texts(v)),
            "exclude_types": lambda v: tuple(texts(v)),
        }
        fs = replace(fs, **r.fields(m["filesystems"], join(path, "filesystems"), spec))
    retry = base.retry_before_notification
    if "retry_before_notification" in m:
        got = r.convert(
            m["retry_before_notification"], join(path, "retry_before_notification"), bounded_count
        )
        retry = retry if got is FAILED else got
    alerting = dict(base.alerting)
    for key in ("add_alerts_recipients", "overwrite_alerts_recipients"):
        if key in m:
            sections.recipients(r, m[key], join(path, key), channels)
            alerting[key] = plain(m[key])
    if "maintenance" in m:
        sections.maintenance(r, m["maintenance"], join(path, "maintenance"))
        alerting["maintenance"] = plain(m["maintenance"])
    return HostRules(thresholds, fs, retry, alerting)


def _agent(v: Any) -> str:
    name = subjects.check_token(str(v), "agent name")
    if len(name) > 62:
        raise ValueError("an agent name with host observations has at most 62 characters")
    return name


def parse(r: Reader, node: Located, channels: Any) -> HostsConfig:
    """``hosts`` (``hosts: {}`` alone turns judging on with the defaults)."""
    if node.value is None:
        return HostsConfig()
    m = r.mapping(node, "hosts", SECTION_KEYS)
    defaults = _rules(r, m, "hosts", HostRules(), channels)
    machines: dict[str, HostRules] = {}
    for i, item in enumerate(r.items(m["machines"], "hosts.machines") if "machines" in m else []):
        path = f"hosts.machines[{i}]"
        mm = r.mapping(item, path, MACHINE_KEYS, ("agent",))
        if "agent" not in mm:
            continue
        agent = r.convert(mm["agent"], join(path, "agent"), _agent)
        if agent is FAILED:
            continue
        if agent in machines:
            r.fail(mm["agent"].where, join(path, "agent"), f"agent {agent!r} is already listed")
            continue
        machines[agent] = _rules(r, mm, path, defaults, channels)
    return HostsConfig(defaults, machines)
