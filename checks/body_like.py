"""``body-like: regex``: the regular expression is found somewhere in the body."""

from __future__ import annotations

from typing import Any

from checks.base import (
    Response,
    Verdict,
    as_text,
    check_regex,
    failure,
    regex,
    shorten,
    success,
)

NAME = "body-like"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> str:
    return check_regex(as_text(expected))


def evaluate(response: Response, expected: str) -> Verdict:
    found = regex(expected).search(response.text)
    if found:
        return success(f"body matches {expected!r}: {shorten(found.group(0), 80)!r}")
    return failure(f"body does not match {expected!r}; it starts {shorten(response.text, 80)!r}")
