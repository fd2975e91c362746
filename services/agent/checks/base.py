"""What every check module works on: the answer to one request, and its verdict.

A check module (one per kind, ``<kind>.py`` beside this file) defines:

- ``NAME``: the key used in the configuration (``status-is``),
- ``SCHEMES``: the target schemes it applies to (``{"http", "https"}``),
- ``parse(expected)``: validate and normalise the YAML value, raising
  ``ValueError`` with a message for the operator,
- ``evaluate(response, expected)``: a :class:`Verdict` (pure, no I/O).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from events.types import Status


@dataclass(frozen=True)
class Verdict:
    status: Status
    detail: str = ""
    value: float | None = None


def success(detail: str = "", value: float | None = None) -> Verdict:
    return Verdict("success", detail, value)


def failure(detail: str, value: float | None = None) -> Verdict:
    return Verdict("failure", detail, value)


def error(detail: str) -> Verdict:
    return Verdict("error", detail)


@dataclass
class Response:
    """One answer. ``headers`` keys are lower-cased; ``body`` may be truncated."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed_ms: float = 0.0
    cert_not_after: float | None = None
    url: str = ""

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @cached_property
    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not (the check then errors)."""
        return json.loads(self.body)


def shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
