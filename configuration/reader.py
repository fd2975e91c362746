"""Walking the YAML tree of a configuration, collecting every problem with its place.

The small converters here raise ``ValueError`` with the operator's words; the
reader turns that into ``FILE:LINE:COL: key.path: message``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from checks.base import duration, kind_of
from configuration.yamlsource import Located, Problem, Where, shown
from events.fields import MAX_SECONDS, MAX_SMALL

#: What ``convert`` returns for a value it refused (``None`` is a legitimate value).
FAILED: Any = object()


class Reader:
    """Walks the Located tree, collecting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        #: Values that came from ${ENV} or secret keys: redacted in the log and the UI.
        self.secrets: set[str] = set()

    def fail(self, where: Where, path: str, message: str) -> None:
        self.problems.append(Problem(where, path, message))

    def warn(self, where: Where, path: str, message: str) -> None:
        self.warnings.append(Problem(where, path, "warning: " + message))

    def mapping(
        self, node: Located, path: str, allowed: set[str], required: tuple[str, ...] = ()
    ) -> dict[str, Located]:
        if not isinstance(node.value, dict):
            self.fail(node.where, path, f"expected a mapping, got {kind_of(node.value)}")
            return {}
        for key, kw in node.key_where.items():
            if key not in allowed:
                hint = closest(key, allowed)
                self.fail(
                    kw,
                    join(path, shown(key)),
                    "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""),
                )
        for key in required:
            if key not in node.value:
                self.fail(node.where, join(path, key), "required key is missing")
        return {k: v for k, v in node.value.items() if k in allowed}

    def convert(
        self,
        node: Located,
        path: str,
        fn: Callable[[Any], Any],
        secret: bool = False,
        public: bool = False,
    ) -> Any:
        """``fn`` of the plain value, or :data:`FAILED` (the problem is recorded).

        A value from ``${ENV}`` is a secret unless ``public``: a website's address is shown
        on every page even when the environment gives it (its credentials are masked apart).
        """
        if node.unset:
            return FAILED
        value = plain(node)
        if (node.secret and not public) or secret:
            found = value if isinstance(value, list) else [value]
            self.secrets.update(v for v in found if isinstance(v, str) and v)
        try:
            return fn(value)
        except (ValueError, TypeError) as exc:
            self.fail(node.where, path, str(exc))
            return FAILED

    def items(self, node: Located, path: str) -> list[Located]:
        if node.value is None or node.unset:
            return []
        if not isinstance(node.value, list):
            self.fail(node.where, path, f"expected a list, got {kind_of(node.value)}")
            return []
        return node.value

    def fields(
        self,
        node: Located,
        path: str,
        spec: Mapping[str, Callable[[Any], Any]],
        required: tuple[str, ...] = (),
        secret: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """A mapping whose keys are all known, each converted by its function."""
        out = {}
        for key, value in self.mapping(node, path, set(spec), required).items():
            got = self.convert(value, join(path, key), spec[key], secret=key in secret)
            if got is not FAILED:
                out[key] = got
        return out


def plain(node: Any) -> Any:
    value = node.value if isinstance(node, Located) else node
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def closest(key: str, allowed: set[str]) -> str | None:
    found = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return found[0] if found else None


# --- converters ------------------------------------------------------------------------


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


def positive(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SMALL:
        raise ValueError(f"expected a whole number from 1 to {MAX_SMALL}, got {kind_of(v)}")
    return v


def text(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, got {kind_of(v)}")
    return v


def texts(v: Any) -> list[str]:
    if not isinstance(v, list):
        raise ValueError(f"expected a list of strings, got {kind_of(v)}")
    return [text(x) for x in v]


def port(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
        raise ValueError(f"expected a port number (1-65535), got {kind_of(v)}")
    return v


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {kind_of(v)}")
        return str(v)

    return check


def anything(v: Any) -> Any:
    return v
