"""Walking the YAML tree of a configuration, collecting every problem with its place.

The small converters here, and those the log's settings are read with too
(``events/values.py``: durations, counts, shares), raise ``ValueError`` with the operator's
words; the reader turns that into ``FILE:LINE:COL: key.path: message``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from configuration.yamlsource import Located, Problem, Where, shown
from events.values import kind_of

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


def text(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, got {kind_of(v)}")
    return v


def texts(v: Any) -> list[str]:
    if not isinstance(v, list):
        raise ValueError(f"expected a list of strings, got {kind_of(v)}")
    return [text(x) for x in v]


#: One mailbox as SMTP takes it (``RCPT TO``): no display name, no list, no space.
_MAILBOX = re.compile(r"[^@\s,;<>()\[\]\\\"]+@[^@\s,;<>()\[\]\\\"]+")


def mail_address(v: Any) -> str:
    """One recipient's address; the value itself is not echoed (it may come from ``${ENV}``)."""
    v = text(v)
    if _MAILBOX.fullmatch(v):
        return v
    why = (
        "two or more (one per item: [a@example.org, b@example.org])"
        if re.search(r"[,;]", v) or v.count("@") > 1
        else "text with a space"
        if re.search(r"\s", v)
        else "text without @"
        if "@" not in v
        else "text that is no address"
    )
    raise ValueError(f"expected one mail address such as ops@example.org, got {why}")


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
