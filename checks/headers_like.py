"""``headers-like: {name: regex}``: each header is present and the regex is found in its value."""

from __future__ import annotations

from typing import Any

from checks.base import (
    Response,
    Verdict,
    as_text,
    check_mapping,
    check_regex,
    failure,
    regex,
    shorten,
    success,
)

NAME = "headers-like"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> dict[str, str]:
    pairs = check_mapping(expected, "{server: ^nginx}")
    return {name.lower(): check_regex(as_text(value, floats=True)) for name, value in pairs.items()}


def evaluate(response: Response, expected: dict[str, str]) -> Verdict:
    wrong = []
    for name, pattern in expected.items():
        got = response.headers.get(name)
        if got is None:
            wrong.append(f"{name} is missing")
        elif not regex(pattern).search(got):
            wrong.append(f"{name} is {shorten(got, 80)!r}, which does not match {pattern!r}")
    if wrong:
        return failure("; ".join(wrong))
    return success("; ".join(f"{n}: {response.headers[n]!r}" for n in expected))
