"""``headers-have: {name: value}``: each header is present with exactly that value."""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, check_mapping, failure, shorten, success

NAME = "headers-have"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> dict[str, str]:
    pairs = check_mapping(expected, "{content-type: text/html}")
    out = {}
    for name, value in pairs.items():
        if isinstance(value, dict | list) or value is None:
            raise ValueError(f"header {name}: expected a value, got {value!r}")
        # YAML reads `x-count: 5` as a number; a header value is always text.
        out[name.lower()] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def evaluate(response: Response, expected: dict[str, str]) -> Verdict:
    wrong = []
    for name, value in expected.items():
        got = response.headers.get(name)
        if got is None:
            wrong.append(f"{name} is missing")
        elif got != value:
            wrong.append(f"{name} is {shorten(got, 80)!r}, expected {value!r}")
    if wrong:
        return failure("; ".join(wrong))
    return success("; ".join(f"{n}: {v!r}" for n, v in expected.items()))
