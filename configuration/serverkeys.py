"""Argos's server sections: ``service`` (the agents' tokens), ``ssl`` (certificate
thresholds) and ``recurring_tasks``, read as Argos reads them (its validators run on the
value as written, before pydantic's coercions)."""

from __future__ import annotations

from typing import Any

from checks.base import kind_of
from checks.judge import DEFAULT_THRESHOLDS
from configuration.reader import FAILED, Reader, join, one_of, text
from configuration.yamlsource import Located
from events.fields import MAX_SECONDS
from events.values import argos_int, bounded_duration, whole

#: The severities Argos's schema takes for a threshold. (It also takes ``error``, which is
#: no severity it alerts on: refused here.)
THRESHOLD_SEVERITIES = ("warning", "critical", "unknown")


def service(r: Reader, node: Located) -> list[str]:
    """``service.secrets``: the bearer tokens of Argos agents (see services/argos). None
    (Argos's own example has none) is valid, and warned of: every agent would be refused."""
    secrets = r.mapping(node, "service", {"secrets"}).get("secrets", Located([], node.where))
    tokens = []
    items = r.items(secrets, "service.secrets")
    for i, secret in enumerate(items):
        token = r.convert(secret, f"service.secrets[{i}]", text, secret=True)
        if token is not FAILED:
            tokens.append(token)
    if not items and isinstance(secrets.value, list | None):
        r.warn(
            secrets.where,
            "service.secrets",
            "no token: `tocsin argos` refuses every Argos agent (401); write the agents' "
            "tokens here (`tocsin argos` reads them again on SIGHUP)",
        )
    return tokens


def recurring_tasks(r: Reader, node: Located) -> dict[str, Any]:
    """Argos's recurring tasks, in seconds: ``max_results_age`` bounds the results the read
    models keep (the projector prunes), ``time_without_agent`` is the no-agent alert's
    delay (the notifier); ``max_lock_seconds`` is the default ``--lease`` of ``tocsin argos``."""
    return r.fields(
        node,
        "recurring_tasks",
        {
            "max_results_age": bounded_duration,
            "max_lock_seconds": _lock_seconds,
            "time_without_agent": _time_without_agent,
        },
    )


def _number(v: Any) -> float:
    # Argos's validators compare the value as written: text cannot be (a TypeError there),
    # and true or false, which it takes as 1 or 0, is refused here as a mistake.
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number, got {kind_of(v)}")
    return v


def _lock_seconds(v: Any) -> int:
    """Argos raises a lock of 60 seconds or less to 100: its agents wait up to 60 for a site.
    Above that, a whole number of seconds."""
    if not _number(v) > 60:
        return 100
    seconds = argos_int(whole)(v)
    if seconds > MAX_SECONDS:
        raise ValueError(
            f"expected a whole number of seconds up to {MAX_SECONDS:.0f} (366 days), got {v}"
        )
    return seconds


def _time_without_agent(v: Any) -> float:
    """Minutes, as Argos (under one is 5), or a duration such as ``10m`` (Tocsin's)."""
    if isinstance(v, str):
        return bounded_duration(v)
    if not _number(v) >= 1:
        return 300.0
    return bounded_duration(argos_int(whole)(v))


def thresholds(r: Reader, node: Located | None) -> list[tuple[float, str]]:
    """``ssl.thresholds``: ``[{"1d": critical}, {"5d": warning}]`` → sorted (seconds, severity)."""

    if node is None:
        return list(DEFAULT_THRESHOLDS)
    out: list[tuple[float, str]] = []
    for i, item in enumerate(r.items(node, "ssl.thresholds")):
        path = f"ssl.thresholds[{i}]"
        if not isinstance(item.value, dict) or len(item.value) != 1:
            r.fail(item.where, path, "expected a one-key mapping such as '5d: warning'")
            continue
        ((dur, sev),) = item.value.items()
        seconds = r.convert(Located(dur, item.key_where[dur]), join(path, dur), _days)
        level = r.convert(sev, join(path, dur), one_of(*THRESHOLD_SEVERITIES))
        if seconds is not FAILED and level is not FAILED:
            if any(s == seconds for s, _ in out):
                r.fail(item.where, path, f"a threshold for {dur} is already set")
            out.append((seconds, level))
    return sorted(out)


def _days(v: Any) -> float:
    """A duration of whole days, as Argos keeps a threshold (``int`` of its days, to the
    hundredth): ``12h`` or ``1M`` (30.5 days) is refused there."""
    seconds = bounded_duration(v)
    if not round(seconds / 86400, 2).is_integer():
        raise ValueError(f"expected whole days, as Argos counts thresholds, got {kind_of(v)}")
    return seconds
