"""``body-contains: text``: the text is a substring of the body."""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, as_text, failure, shorten, success

NAME = "body-contains"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> str:
    expected = as_text(expected)
    if not isinstance(expected, str) or not expected:
        raise ValueError(f"expected a non-empty string, got {expected!r}")
    return expected


def evaluate(response: Response, expected: str) -> Verdict:
    if expected in response.text:
        return success(f"body contains {shorten(expected)!r}")
    return failure(f"body does not contain {shorten(expected)!r}")
