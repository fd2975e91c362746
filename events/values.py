"""The values of a configuration's settings (durations, counts, shares), read with the same
rules wherever they come from: the configuration file (``configuration/reader.py``) and a
``config.applied`` of the log (``events/settings.py``). Each converter raises ``ValueError``
with the operator's words; the bounds are the event contract's (``events/fields.py``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from events.fields import MAX_SECONDS, MAX_SMALL

#: What a secret value of the configuration is shown as (``configuration/redaction.py``).
MASK = "••••"
#: A mask as ``redaction.hidden`` writes it: the fingerprint says which value it stands for.
MASKED = re.compile(MASK + r"([0-9a-f]{8})")


def kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


#: Argos's durations (the ``durations_nlp`` package): one or more NUMBER SCALE terms, each
#: scale short, singular or plural, terms apart by spaces, commas or "and" ("1h 30m",
#: "2 hours and 5 minutes"). A month is 30.5 days and a year 12 months, as there.
_TERM = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)")
_SEPARATOR = re.compile(r"^(?:[\s,]|and\b)*$")
_SCALES = {
    ("ms", "millisecond", "milliseconds"): 0.001,
    ("s", "second", "seconds"): 1,
    ("m", "minute", "minutes"): 60,
    ("h", "hour", "hours"): 3600,
    ("d", "day", "days"): 86400,
    ("w", "week", "weeks"): 7 * 86400,
    ("M", "month", "months"): 30.5 * 86400,
    ("y", "year", "years"): 12 * 30.5 * 86400,
    ("D", "decade", "decades"): 120 * 30.5 * 86400,
    ("c", "century", "centuries"): 1200 * 30.5 * 86400,
}
UNITS = {name: unit for names, unit in _SCALES.items() for name in names}


def duration(value: Any) -> float:
    """``500ms``, ``30s``, ``5m``, ``1h30m``, ``2 days``, ``1w``, ``1M``, ``1y`` into
    seconds (> 0)."""
    seconds, rest = 0.0, 0
    terms = list(_TERM.finditer(value)) if isinstance(value, str) else []
    for term in terms:
        unit = UNITS.get(term.group(2))
        if unit is None or not _SEPARATOR.match(value[rest : term.start()]):
            terms = []
            break
        seconds += float(term.group(1)) * unit
        rest = term.end()
    if not terms or not _SEPARATOR.match(value[rest:]):
        raise ValueError(
            "expected a duration such as 500ms, 30s, 5m, 1h30m, 2d, 1w, 1M, 1y; "
            f"got {kind_of(value)}"
        )
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def parse_duration(value: Any) -> float:
    """``30s``, ``5m``, ``1h``, ``2d``, ``1w``, ``1M``, ``1y`` into seconds; a bare number means
    minutes, as Argos's ``frequency``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 5m, got {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("a duration must be positive")
        seconds = float(value) * 60
    else:
        seconds = duration(value)
    # ``.inf``, ``.nan`` or 400 nines: JSON has no such number, the log would hold null.
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite, got {kind_of(value)}")
    return seconds


def bounded_duration(value: Any) -> float:
    """A duration of the configuration (a task's frequency, timeout, recheck delay; a
    setting's retention, interval, window, threshold): within the event contract's bound.
    The log carries them all, and a longer one (``999999999d``) overflowed where it was used
    (a session's expiry, a PostgreSQL interval, a deadline past what an event may hold)."""
    seconds = parse_duration(value)
    if seconds > MAX_SECONDS:
        raise ValueError(
            f"at most {MAX_SECONDS / 86400:g} days (what the event log holds), got {kind_of(value)}"
        )
    return seconds


def bounded_count(v: Any) -> int:
    """A count of the configuration (retries, a quorum, a rate): within the event contract's
    bound."""
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_SMALL:
        raise ValueError(f"expected a whole number from 0 to {MAX_SMALL}, got {kind_of(v)}")
    return v


def positive(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SMALL:
        raise ValueError(f"expected a whole number from 1 to {MAX_SMALL}, got {kind_of(v)}")
    return v


def access(v: Any) -> str | None:
    """Argos's ``unauthenticated_access``."""
    if v not in (None, "dashboard", "all"):
        raise ValueError(f"expected one of dashboard, all, got {kind_of(v)}")
    return v  # type: ignore[no-any-return]


def root_path(v: Any) -> str:
    if not isinstance(v, str) or not v.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {kind_of(v)}")
    return v


def share(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
        raise ValueError(f"expected a share above 0 and at most 1 (0.5: half), got {kind_of(v)}")
    return float(v)
