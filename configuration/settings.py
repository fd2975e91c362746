"""What a website inherits from ``general`` and may override: the settings its tasks carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from configuration.reader import FAILED, Reader, join
from configuration.yamlsource import Located
from events import subjects
from events.values import argos_bool, argos_int, bounded_count, bounded_duration, delay_or_none


@dataclass
class Settings:
    """What a website inherits from ``general`` and may override."""

    frequency: float = 300.0
    recheck_delay: float | None = None
    retry_before_notification: int = 0
    ipv4: bool = True
    ipv6: bool = True
    #: None: the target's default (``default_timeout``).
    timeout: float | None = None
    locations: list[str] = field(default_factory=lambda: ["default"])


#: Argos 0.10.3's agent gives every request ``timeout=60`` (httpx's, per step): an Argos
#: file's http(s) checks wait as long, so a site answering in 30 s is up for both, whichever
#: agent asks (tests/test_argos_timeout.py reads it from Argos's agent).
HTTP_TIMEOUT = 60.0
#: Tocsin's own probes (tcp, dns, icmp, …) have no Argos verdict to match: a dead port or
#: resolver is told within 10 s.
PROBE_TIMEOUT = 10.0


def default_timeout(url: str) -> float:
    """The timeout of a target whose file sets none, by its scheme."""
    return HTTP_TIMEOUT if url.partition(":")[0] in ("http", "https") else PROBE_TIMEOUT


def _locations(v: Any) -> list[str]:
    if not isinstance(v, list) or not v:
        raise ValueError("expected a non-empty list of location names")
    names = [subjects.check_token(str(x), "location") for x in v]
    if twice := next((n for i, n in enumerate(names) if n in names[:i]), None):
        raise ValueError(f"location {twice!r} is listed twice: each is asked once")
    return names


_SETTINGS = {
    # What a task carries in the log: within the event contract's bounds.
    "frequency": bounded_duration,
    "recheck_delay": bounded_duration,
    "retry_before_notification": argos_int(bounded_count),
    "ipv4": argos_bool,
    "ipv6": argos_bool,
    "timeout": bounded_duration,
    "locations": _locations,
}


def read_settings(r: Reader, m: dict[str, Located], path: str, base: Settings) -> Settings:
    """The settings of ``general`` (``path`` "general") or of a website, over ``base``."""
    s = Settings(**{k: getattr(base, k) for k in base.__dataclass_fields__})
    for key, fn in _SETTINGS.items():
        if key not in m:
            continue
        node = m[key]
        if path != "general" and node.value is None and not node.unset:
            continue  # Argos's website keys are optional: empty, the general value holds
        if path == "general" and key == "recheck_delay":
            fn = delay_or_none
        value = r.convert(node, join(path, key), fn)
        if value is not FAILED:
            setattr(s, key, value)
    if not (s.ipv4 or s.ipv6) and ("ipv4" in m or "ipv6" in m):
        where = (m.get("ipv6") or m["ipv4"]).where
        r.fail(where, path, "ipv4 and ipv6 are both false: nothing would be checked")
    if (
        s.recheck_delay is not None
        and s.recheck_delay >= s.frequency
        and ("recheck_delay" in m or "frequency" in m)
    ):
        key = "recheck_delay" if "recheck_delay" in m else "frequency"
        r.fail(
            m[key].where,
            join(path, key),
            f"recheck_delay ({s.recheck_delay:g}s) must be "
            f"shorter than frequency ({s.frequency:g}s)",
        )
    return s
