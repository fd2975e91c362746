"""``response-time: {warning: 500ms, critical: 2s}``: how long the answer took (beyond Argos).

The agent reports the time (``value``, milliseconds) and fails from the
critical limit; the scheduler grades warning and critical from ``value``
(services/scheduler/judge.py), as it does for certificates. For ``tcp://`` and
``tls://`` targets the time is that of the connection (and handshake).
"""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, duration, failure, success

NAME = "response-time"
SCHEMES = {"http", "https", "tcp", "tls"}


def parse(expected: Any) -> dict[str, float]:
    if not isinstance(expected, dict) or not expected:
        raise ValueError(
            f"expected limits such as {{warning: 500ms, critical: 2s}}, got {expected!r}"
        )
    unknown = sorted(set(expected) - {"warning", "critical"})
    if unknown:
        raise ValueError(f"unknown limit {unknown[0]!r}: only warning and critical are known")
    limits = {name: round(duration(value) * 1000, 3) for name, value in expected.items()}
    if "warning" in limits and "critical" in limits and limits["warning"] >= limits["critical"]:
        raise ValueError("the warning limit must be below the critical one")
    return limits


def grade(elapsed_ms: float, limits: dict[str, float]) -> str:
    """``ok``, ``warning`` or ``critical`` for a time; shared by the agent and the judge."""
    if "critical" in limits and elapsed_ms >= limits["critical"]:
        return "critical"
    if "warning" in limits and elapsed_ms >= limits["warning"]:
        return "warning"
    return "ok"


def evaluate(response: Response, expected: dict[str, float]) -> Verdict:
    elapsed = round(response.elapsed_ms, 1)
    level = grade(elapsed, expected)
    if level == "ok":
        return success(f"answered in {elapsed:g} ms", value=elapsed)
    limit = expected[level]
    detail = f"answered in {elapsed:g} ms, {level} from {limit:g} ms"
    return failure(detail, value=elapsed) if level == "critical" else success(detail, value=elapsed)
