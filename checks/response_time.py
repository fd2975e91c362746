"""``response-time: {warning: 500ms, critical: 2s}``: how long the answer took (beyond Argos).

The agent reports the time (``value``, milliseconds) and fails from the
critical limit; the scheduler grades warning and critical from ``value``
(checks/judge.py), as it does for certificates. For the targets beyond HTTP
it is the time of the connection and handshakes (STARTTLS, WebSocket), of the DNS
query, of the RDAP lookup, or the mean round trip of the ICMP echoes.
"""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, failure, success
from events.values import duration

NAME = "response-time"
SCHEMES = {
    "http",
    "https",
    "tcp",
    "tls",
    "smtp",
    "imap",
    "pop3",
    "dns",
    "icmp",
    "ws",
    "wss",
    "rdap",
}


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
