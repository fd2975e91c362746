"""What every check module works on: the answer to one request, and its verdict.

A check module (one per kind, ``<kind>.py`` beside this file) defines:

- ``NAME``: the key used in the configuration (``status-is``),
- ``SCHEMES``: the target schemes it applies to (``{"http", "https"}``),
- ``parse(expected)``: validate and normalise the YAML value, raising
  ``ValueError`` with a message for the operator; the result must be plain
  JSON data, since it travels in the task definition and the check request,
- ``evaluate(response, expected)``: a :class:`Verdict` (pure, no I/O),
- optionally ``target_url(url)``: the URL whose answer the check needs when
  it is not the group's own (``http-to-https`` looks at the ``http://`` URL).

See docs/adding-a-check.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import msgspec

from events.types import Status
from events.values import kind_of


class Verdict(msgspec.Struct, frozen=True):
    """A check's verdict. A frozen struct, not a frozen dataclass: one is made per check on
    the agent's hot path, and a frozen dataclass sets each field through ``object.__setattr__``
    (timeit: 0.9 µs against 0.1)."""

    status: Status
    detail: str = ""
    value: float | None = None


def success(detail: str = "", value: float | None = None) -> Verdict:
    return Verdict("success", detail, value)


def failure(detail: str, value: float | None = None) -> Verdict:
    return Verdict("failure", detail, value)


def error(detail: str) -> Verdict:
    return Verdict("error", detail)


#: The most of a body the agent reads: what lies past it is left unread (``Response.body_cut``).
MAX_BODY = 1024 * 1024


@dataclass
class Response:
    """One answer. ``headers`` keys are lower-cased; ``body`` is the first :data:`MAX_BODY`
    bytes of a longer one when ``body_cut``.

    For targets beyond HTTP (``tcp://``, ``dns://``, …) ``status`` is 0: there is no HTTP
    answer; ``facts`` holds what their probe observed (the same dict as the observation's).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed_ms: float = 0.0
    cert_not_after: float | None = None
    url: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    body_cut: bool = False

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @cached_property
    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not (the check then errors)."""
        return json.loads(self.body)


class NotJSON(Exception):
    """The body is not JSON: a JSON check cannot be evaluated (status error, not failure)."""


def body_json(response: Response) -> Any:
    try:
        return response.json
    except ValueError as exc:
        if response.body_cut:  # a JSON document cut short is not one: say why it is cut
            raise NotJSON(
                f"the body is longer than {MAX_BODY // 1048576} MiB, the most the agent reads: "
                f"its first MiB is not JSON ({exc})"
            ) from exc
        raise NotJSON(f"the body is not JSON ({exc}): {shorten(response.text, 80)!r}") from exc


def shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def show(value: Any, limit: int = 120) -> str:
    """A retrieved value as JSON text, short enough for a verdict's detail."""
    return shorten(json.dumps(value, ensure_ascii=False, sort_keys=True), limit)


# --- helpers for parse(): each raises ValueError with the operator's words -------------


@lru_cache(maxsize=4096)
def regex(pattern: str) -> re.Pattern[str]:
    """A compiled pattern; cached because an agent evaluates the same ones all day."""
    return re.compile(pattern)


def as_text(value: Any, floats: bool = False) -> Any:
    """A number where text is expected, as the text Argos makes of it: YAML reads
    ``body-contains: 42`` as a number, and Argos stores ``str(42)``. Argos does so for a
    whole check value's integers, and (json.dumps) for numbers inside a mapping (``floats``).
    Booleans stay refused: ``true`` is rather a mistake than the text ``True``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, int) or floats:
            return str(value)
    return value


def check_regex(value: Any, what: str = "a regular expression") -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected {what} as a non-empty string, got {kind_of(value)}")
    try:
        regex(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def check_text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {kind_of(value)}")
    return value


def check_mapping(value: Any, example: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise ValueError(f"expected a non-empty mapping such as {example}, got {kind_of(value)}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise ValueError(f"expected string keys, got {key!r}")
    return value


def check_list(value: Any, example: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a non-empty list such as {example}, got {kind_of(value)}")
    return value


def status_code(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError(f"expected an HTTP status code (100-599), got {value!r}")
    return value
