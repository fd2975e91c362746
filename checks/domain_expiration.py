"""``domain-expiration: on-check`` or ``{warning: 30d, critical: 7d}``: days before the
domain's registration expires, from its RDAP record (beyond Argos).

For ``rdap://DOMAIN`` targets. The agent reports the expiry (``value``, Unix
seconds); the scheduler grades the days left (checks/judge.py): ``on-check``
by ``ssl.thresholds`` as certificates are, or by the limits given here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checks.base import Response, Verdict, error, success
from events.values import duration

NAME = "domain-expiration"
SCHEMES = {"rdap"}


def parse(expected: Any) -> str | dict[str, float]:
    if expected == "on-check":
        return expected
    if not isinstance(expected, dict) or not expected:
        raise ValueError(
            f"expected on-check (limits of ssl.thresholds) or limits such as "
            f"{{warning: 30d, critical: 7d}}, got {expected!r}"
        )
    unknown = sorted(set(expected) - {"warning", "critical"})
    if unknown:
        raise ValueError(f"unknown limit {unknown[0]!r}: only warning and critical are known")
    limits = {name: duration(value) for name, value in expected.items()}
    if "warning" in limits and "critical" in limits and limits["warning"] <= limits["critical"]:
        raise ValueError("the warning limit must be longer than the critical one")
    return limits


def thresholds(expected: Any, default: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """The grading limits, in ``ssl.thresholds`` form (seconds left, severity)."""
    if isinstance(expected, dict):
        return [(seconds, severity) for severity, seconds in expected.items()]
    return default


def evaluate(response: Response, expected: Any) -> Verdict:
    expires = response.facts.get("expires")
    if expires is None:
        return error("the registry's record has no expiration date")
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return success(f"domain registered until {when}", value=expires)
