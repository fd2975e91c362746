"""The configuration: Argos's YAML format, validated strictly, turned into tasks.

Every problem names the file, line, column and key path; nothing of an
invalid file is used. Task and group identities are derived from what makes
them, so they survive reordering and reloads.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from events import subjects
from events.types import RequestData, TaskDef
from services.agent.checks import CATALOGUE
from services.scheduler.yamlsource import ConfigError, Located, Problem, Where, load

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|M|y)\s*$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
         "M": 30 * 86400, "y": 365 * 86400}
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
SEVERITY_NAMES = ("ok", "warning", "critical", "unknown", "no_agent")


def parse_duration(value: Any) -> float:
    """``30s``, ``5m``, ``1h``, ``2d``, ``1w``, ``1M``, ``1y`` (a bare number means minutes, as
    Argos's ``frequency``) into seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 5m, got {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return float(value) * 60
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"expected a duration such as 30s, 5m, 1h, 2d, 1w, 1M, 1y; got {value!r}")
    seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


@dataclass
class Settings:
    """What a website inherits from ``general`` and may override."""

    frequency: float = 300.0
    recheck_delay: float | None = None
    retry_before_notification: int = 0
    ipv4: bool = True
    ipv6: bool = True
    timeout: float = 10.0
    locations: list[str] = field(default_factory=lambda: ["default"])


@dataclass
class Config:
    source: str
    digest: str
    tasks: dict[str, TaskDef]
    general: dict[str, Any]
    ssl_thresholds: list[tuple[float, str]]
    secrets: set[str] = field(default_factory=set)

    @property
    def locations(self) -> list[str]:
        return sorted({loc for t in self.tasks.values() for loc in t.locations}) or ["default"]


def _plain(node: Located) -> Any:
    if isinstance(node.value, dict):
        return {k: _plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v) for v in node.value]
    return node.value


class _Reader:
    """Walks the Located tree, collecting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.secrets: set[str] = set()

    def fail(self, where: Where, path: str, message: str) -> None:
        self.problems.append(Problem(where, path, message))

    def mapping(self, node: Located, path: str, allowed: set[str],
                required: tuple[str, ...] = ()) -> dict[str, Located]:
        if not isinstance(node.value, dict):
            self.fail(node.where, path, f"expected a mapping, got {_kind(node.value)}")
            return {}
        for key, kw in node.key_where.items():
            if key not in allowed:
                hint = _closest(key, allowed)
                self.fail(kw, _join(path, key),
                          "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))
        for key in required:
            if key not in node.value:
                self.fail(node.where, _join(path, key), "required key is missing")
        return {k: v for k, v in node.value.items() if k in allowed}

    def convert(self, node: Located, path: str, fn: Callable[[Any], Any]) -> Any:
        if node.secret and isinstance(node.value, str):
            self.secrets.add(node.value)
        try:
            return fn(node.value)
        except (ValueError, TypeError) as exc:
            self.fail(node.where, path, str(exc))
            return None

    def items(self, node: Located, path: str) -> list[Located]:
        if node.value is None:
            return []
        if not isinstance(node.value, list):
            self.fail(node.where, path, f"expected a list, got {_kind(node.value)}")
            return []
        return node.value


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _closest(key: str, allowed: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return found[0] if found else None


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _count(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"expected a whole number >= 0, got {v!r}")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, got {_kind(v)}")
    return v


def _locations(v: Any) -> list[str]:
    if not isinstance(v, list) or not v:
        raise ValueError("expected a non-empty list of location names")
    return [subjects.check_token(str(x.value if isinstance(x, Located) else x), "location")
            for x in v]


GENERAL_KEYS = {
    "frequency", "recheck_delay", "retry_before_notification", "ipv4", "ipv6", "alerts",
    "mail", "gotify", "apprise", "db", "env", "cookie_secret", "session_duration",
    "remember_me_duration", "unauthenticated_access", "ldap", "root_path",
    # Tocsin's own
    "timeout", "locations", "quorum", "reminder_interval", "maintenance",
}
WEBSITE_KEYS = {
    "domain", "frequency", "recheck_delay", "retry_before_notification", "ipv4", "ipv6",
    "add_alerts_recipients", "overwrite_alerts_recipients", "paths",
    "timeout", "locations", "quorum", "maintenance", "checks",
}
PATH_KEYS = {"path", "method", "request_data", "checks"}
REQUEST_DATA_KEYS = {"data", "is_json", "headers"}
TOP_KEYS = {"general", "service", "ssl", "recurring_tasks", "websites"}


def _settings(r: _Reader, m: dict[str, Located], path: str, base: Settings) -> Settings:
    s = Settings(**{k: getattr(base, k) for k in base.__dataclass_fields__})
    conv: dict[str, Callable[[Any], Any]] = {
        "frequency": parse_duration, "recheck_delay": parse_duration,
        "retry_before_notification": _count, "ipv4": _boolean, "ipv6": _boolean,
        "timeout": parse_duration, "locations": _locations,
    }
    for key, fn in conv.items():
        if key in m:
            value = r.convert(m[key], _join(path, key), fn)
            if value is not None:
                setattr(s, key, value)
    if not (s.ipv4 or s.ipv6):
        where = (m.get("ipv6") or m.get("ipv4") or next(iter(m.values()), None))
        if where is not None:
            r.fail(where.where, path, "ipv4 and ipv6 are both false: nothing would be checked")
    return s


def _digest(*parts: Any) -> str:
    raw = msgspec.json.encode(parts, order="sorted")
    return hashlib.sha256(raw).hexdigest()[:16]


def group_id(url: str, method: str, ip_version: int, data: RequestData | None) -> str:
    return _digest("group", url, method, ip_version, data)


def task_id(url: str, method: str, ip_version: int, data: RequestData | None, check: str,
            expected: Any) -> str:
    return _digest("task", url, method, ip_version, data, check, expected)


def _request_data(r: _Reader, node: Located, path: str) -> RequestData | None:
    m = r.mapping(node, path, REQUEST_DATA_KEYS)
    data = r.convert(m["data"], _join(path, "data"), str) if "data" in m else None
    is_json = r.convert(m["is_json"], _join(path, "is_json"), _boolean) if "is_json" in m else False
    headers: dict[str, str] = {}
    if "headers" in m:
        hm = r.mapping(m["headers"], _join(path, "headers"), set(m["headers"].key_where))
        for name, value in hm.items():
            headers[name] = r.convert(value, _join(path, f"headers.{name}"), str) or ""
    return RequestData(data=data, is_json=bool(is_json), headers=headers)


def _checks(r: _Reader, node: Located, path: str, scheme: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for i, item in enumerate(r.items(node, path)):
        ipath = _join(path, i)
        if not isinstance(item.value, dict) or len(item.value) != 1:
            r.fail(item.where, ipath, "each check is a one-key mapping such as 'status-is: 200'")
            continue
        ((name, value),) = item.value.items()
        kind = CATALOGUE.get(name)
        if kind is None:
            hint = _closest(name, set(CATALOGUE))
            r.fail(item.key_where[name], _join(ipath, name),
                   "unknown check" + (f" (did you mean {hint!r}?)" if hint else ""))
            continue
        if scheme not in kind.SCHEMES:
            r.fail(item.key_where[name], _join(ipath, name),
                   f"check {name} does not apply to {scheme}:// targets")
            continue
        expected = r.convert(value, _join(ipath, name), lambda v, k=kind: k.parse(_plain_v(v)))
        if expected is not None or value.value is None:
            out.append((name, expected))
    return out


def _plain_v(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _website_nodes(r: _Reader, node: Located) -> list[Located]:
    """Websites, flattening ``!include dir/*.yaml`` (a list of one-website files)."""
    out: list[Located] = []
    for item in r.items(node, "websites"):
        if isinstance(item.value, list):
            out += [x for x in item.value if x.value is not None]
        else:
            out.append(item)
    return out


def _thresholds(r: _Reader, node: Located | None) -> list[tuple[float, str]]:
    if node is None:
        return [(86400.0, "critical"), (5 * 86400.0, "warning")]
    out = []
    for i, item in enumerate(r.items(node, "ssl.thresholds")):
        path = f"ssl.thresholds[{i}]"
        if not isinstance(item.value, dict) or len(item.value) != 1:
            r.fail(item.where, path, "expected a one-key mapping such as '5d: warning'")
            continue
        ((dur, sev),) = item.value.items()
        seconds = r.convert(Located(dur, item.where), path, parse_duration)
        if sev.value not in ("ok", "warning", "critical", "unknown"):
            r.fail(sev.where, path, f"unknown severity {sev.value!r}")
        elif seconds is not None:
            out.append((seconds, sev.value))
    return sorted(out)


def parse(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a configuration file; raise ConfigError listing every problem."""
    root = load(path, env)
    raw = Path(path).read_bytes()
    r = _Reader()
    top = r.mapping(root, "", TOP_KEYS, required=("general", "websites"))
    general = r.mapping(top["general"], "general", GENERAL_KEYS, ("frequency",)) \
        if "general" in top else {}
    base = _settings(r, general, "general", Settings())
    ssl = r.mapping(top["ssl"], "ssl", {"thresholds"}) if "ssl" in top else {}
    thresholds = _thresholds(r, ssl.get("thresholds"))
    if "service" in top:
        r.mapping(top["service"], "service", {"secrets"})
    if "recurring_tasks" in top:
        r.mapping(top["recurring_tasks"], "recurring_tasks",
                  {"max_results_age", "max_lock_seconds", "time_without_agent"})
    tasks: dict[str, TaskDef] = {}
    for wi, wnode in enumerate(_website_nodes(r, top["websites"]) if "websites" in top else []):
        wpath = f"websites[{wi}]"
        w = r.mapping(wnode, wpath, WEBSITE_KEYS, ("domain",))
        if "domain" not in w:
            continue
        domain = r.convert(w["domain"], _join(wpath, "domain"), _domain)
        settings = _settings(r, w, wpath, base)
        if domain is None:
            continue
        scheme = urlsplit(domain).scheme
        for pi, pnode in enumerate(r.items(w.get("paths", Located([], wnode.where)), _join(wpath, "paths"))):
            ppath = _join(wpath, f"paths[{pi}]")
            p = r.mapping(pnode, ppath, PATH_KEYS, ("path", "checks"))
            if "path" not in p or "checks" not in p:
                continue
            rel = r.convert(p["path"], _join(ppath, "path"), _text) or ""
            method = (r.convert(p["method"], _join(ppath, "method"), _method)
                      if "method" in p else "GET") or "GET"
            data = _request_data(r, p["request_data"], _join(ppath, "request_data")) \
                if "request_data" in p else None
            url = domain.rstrip("/") + ("/" + rel.lstrip("/") if rel else "")
            for check, expected in _checks(r, p["checks"], _join(ppath, "checks"), scheme):
                for ip in ((4,) if settings.ipv4 else ()) + ((6,) if settings.ipv6 else ()):
                    tid = task_id(url, method, ip, data, check, expected)
                    tasks[tid] = TaskDef(
                        id=tid, group=group_id(url, method, ip, data),
                        domain=urlsplit(domain).netloc or domain, url=url, method=method,
                        ip_version=ip, check=check, expected=expected,
                        frequency=settings.frequency, recheck_delay=settings.recheck_delay,
                        retry_before_notification=settings.retry_before_notification,
                        request_data=data, timeout=settings.timeout,
                        locations=settings.locations,
                    )
    if r.problems:
        raise ConfigError(r.problems)
    return Config(
        source=str(path), digest=hashlib.sha256(raw).hexdigest(), tasks=tasks,
        general={k: _plain(v) for k, v in general.items()}, ssl_thresholds=thresholds,
        secrets=r.secrets,
    )


def _domain(v: Any) -> str:
    text = _text(v)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected a URL such as https://example.org, got {text!r}")
    return text


def _method(v: Any) -> str:
    text = _text(v).upper()
    if text not in METHODS:
        raise ValueError(f"unknown HTTP method {v!r}")
    return text


__all__ = ["Config", "ConfigError", "Settings", "group_id", "parse", "parse_duration", "task_id"]
