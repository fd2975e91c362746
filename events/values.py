"""The values of a configuration's settings (durations, counts, shares), read with the same
rules wherever they come from: the configuration file (``configuration/reader.py``) and a
``config.applied`` of the log (``events/settings.py``). Each converter raises ``ValueError``
with the operator's words; the bounds are the event contract's (``events/fields.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from events.fields import INT64, MAX_SECONDS, MAX_SMALL

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
#: scale short, singular or plural, terms apart by spaces, tabs, commas or "and" ("1h 30m",
#: "2 hours and 5 minutes"). A month is 30.5 days and a year 12 months, as there.
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
_EXAMPLES = "expected a duration such as 500ms, 30s, 5m, 1h30m, 2d, 1w, 1M, 1y"


def _duration_tokens(text: str) -> list[str] | None:
    """durations_nlp's tokenizer, step for step, so that what Argos reads Tocsin reads: a
    token is a run of digits or of letters (other characters, such as ``.`` ``_`` ``-``,
    stick to the run they are in); a separator ends one and must follow a whole number, a
    scale or "and". None where durations_nlp raises."""
    tokens, buff, last = [], "", None
    for c in text:
        if c in " \t,":
            if buff and not (buff.isdigit() or buff == "and" or buff in UNITS):
                return None
            if buff and buff != "and":
                tokens.append(buff)
            buff, last = "", None
            continue
        kind = "digit" if c.isdigit() else "alpha" if c.isalpha() else None
        if kind is not None and last is not None and kind != last:
            tokens.append(buff)
            buff = c
        else:
            buff += c
        last = kind
    if buff and buff != "and":
        tokens.append(buff)
    return tokens


def duration(value: Any) -> float:
    """``500ms``, ``30s``, ``5m``, ``1h30m``, ``2 days``, ``1w``, ``1M``, ``1y`` into
    seconds (> 0), as Argos reads them; what it would misread is refused: no term (Argos: 0),
    a number without its unit (``1h30``: Argos drops the 30), a negative term."""
    tokens = _duration_tokens(value) if isinstance(value, str) else None
    if not tokens:
        raise ValueError(f"{_EXAMPLES}; got {kind_of(value)}")
    if len(tokens) % 2:
        lone = tokens[-1]
        detail = f" ({lone!r} has no unit)" if lone[:1].isdigit() else ""
        raise ValueError(f"{_EXAMPLES}; got {kind_of(value)}{detail}")
    try:
        terms = [(float(n), UNITS[u]) for n, u in zip(tokens[::2], tokens[1::2], strict=True)]
    except (ValueError, KeyError):
        raise ValueError(f"{_EXAMPLES}; got {kind_of(value)}") from None
    if any(amount < 0 for amount, _ in terms):
        raise ValueError(f"a duration must be positive, got {kind_of(value)}")
    seconds = sum(amount * unit for amount, unit in terms)
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
        try:
            seconds = float(value) * 60
        except OverflowError:  # an int of 400 digits: no float holds it
            raise ValueError("a duration must be finite, got a number too large") from None
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


def delay_or_none(v: Any) -> float | None:
    """``general.recheck_delay``: Argos reads any empty value (null, 0, false, "") as no
    recheck delay."""
    return None if not v else bounded_duration(v)


def session_duration(v: Any) -> float:
    """Whole minutes, as Argos keeps it (an ``int`` of minutes): ``90s`` is refused there."""
    seconds = bounded_duration(v)
    if not round(seconds / 60, 2).is_integer():
        raise ValueError(f"expected whole minutes, as Argos counts sessions, got {kind_of(v)}")
    return seconds


def access(v: Any) -> str | None:
    """Argos's ``unauthenticated_access``."""
    if v not in (None, "dashboard", "all"):
        raise ValueError(f"expected one of dashboard, all, got {kind_of(v)}")
    return v  # type: ignore[no-any-return]


def root_path(v: Any) -> str:
    # Empty is Argos's default: the site at the root.
    if not isinstance(v, str) or (v and not v.startswith("/")):
        raise ValueError(f"expected a path starting with '/', got {kind_of(v)}")
    return v


def share(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
        raise ValueError(f"expected a share above 0 and at most 1 (0.5: half), got {kind_of(v)}")
    return float(v)


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {kind_of(v)}")
    return v


# --- Argos's schema reads its values with pydantic, which coerces ("lax mode"): these read
# what it takes, in the same meaning (tests/test_argos_fields.py asks Argos itself).

#: A whole number as text: ASCII digits, ``_`` between two of them, a sign, a zero fraction.
_WHOLE_TEXT = re.compile(r"[+-]?[0-9](?:_?[0-9])*(?:\.0+)?", re.ASCII)
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def argos_int(fn: Callable[[Any], int]) -> Callable[[Any], int]:
    """``fn`` of what pydantic's ``int`` makes a whole number of: a number with no fraction
    (``2.0``) or its text (``"2"``, ``" 2 "``, ``"2_000"``, ``"2.0"``). ``true`` is left for
    ``fn`` to refuse: pydantic reads it as 1, which nobody writing a count or a port means."""

    def convert(v: Any) -> int:
        if isinstance(v, str) and _WHOLE_TEXT.fullmatch(v.strip()):
            v = int(v.strip().partition(".")[0].replace("_", ""))
        elif isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
            v = int(v)
        return fn(v)

    return convert


def argos_bool(v: Any) -> bool:
    """pydantic's ``bool``: true or false, 1 or 0, or their words in any case (``"yes"``,
    ``"off"``, ``"t"``, …), as Argos reads ``ipv4`` or ``is_json``."""
    if isinstance(v, str) and v.lower() in _TRUE | _FALSE:
        return v.lower() in _TRUE
    if isinstance(v, int | float) and not isinstance(v, bool) and v in (0, 1):
        return bool(v)
    return boolean(v)


def or_none(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn``, or None for a value left empty: Argos's optional keys (``T | None``)."""

    def convert(v: Any) -> Any:
        return None if v is None else fn(v)

    return convert


def whole(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected a whole number, got {kind_of(v)}")
    return v


def stored_whole(v: Any) -> int:
    """A whole number the settings carry as written (``general.db``'s): one of 64 bits, as
    the event log holds any number."""
    if not -INT64 <= whole(v) < INT64:
        raise ValueError(f"expected a whole number of 64 bits (what the event log holds), got {v}")
    return v  # type: ignore[no-any-return]
