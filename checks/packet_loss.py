"""``packet-loss: {warning: 20%, critical: 50%}``: the share of ICMP echoes lost (beyond Argos).

For ``icmp://`` targets. The agent reports the loss (``value``, percent) and
fails from the critical limit; the scheduler grades warning and critical from
``value`` (checks/judge.py), as it does for response times. No reply at all
fails the group before this check; the round trip is ``response-time``'s.
"""

from __future__ import annotations

import re
from typing import Any

from checks.base import Response, Verdict, failure, success

NAME = "packet-loss"
SCHEMES = {"icmp"}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")


def _percent(value: Any) -> float:
    m = _PERCENT.match(str(value)) if isinstance(value, str | int | float) else None
    if m is None or isinstance(value, bool) or not 0 <= float(m.group(1)) < 100:
        raise ValueError(f"expected a percentage below 100 such as 20%, got {value!r}")
    return float(m.group(1))


def parse(expected: Any) -> dict[str, float]:
    if not isinstance(expected, dict) or not expected:
        raise ValueError(
            f"expected limits such as {{warning: 20%, critical: 50%}}, got {expected!r}"
        )
    unknown = sorted(set(expected) - {"warning", "critical"})
    if unknown:
        raise ValueError(f"unknown limit {unknown[0]!r}: only warning and critical are known")
    limits = {name: _percent(value) for name, value in expected.items()}
    if "warning" in limits and "critical" in limits and limits["warning"] >= limits["critical"]:
        raise ValueError("the warning limit must be below the critical one")
    return limits


def grade(loss: float, limits: dict[str, float]) -> str:
    """``ok``, ``warning`` or ``critical`` for a loss; a limit is reached when loss exceeds it."""
    if "critical" in limits and loss > limits["critical"]:
        return "critical"
    if "warning" in limits and loss > limits["warning"]:
        return "warning"
    return "ok"


def evaluate(response: Response, expected: dict[str, float]) -> Verdict:
    facts = response.facts
    loss = float(facts["loss_pct"])
    said = f"{facts['received']} of {facts['sent']} echoes answered ({loss:g}% lost)"
    level = grade(loss, expected)
    if level == "ok":
        return success(said, value=loss)
    detail = f"{said}, {level} above {expected[level]:g}%"
    return failure(detail, value=loss) if level == "critical" else success(detail, value=loss)
