"""``status-is: 200``: the status code equals the expected one."""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, failure, success

NAME = "status-is"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> int:
    # Argos reads this check's value with int(): its own tests write status-is: "200".
    if isinstance(expected, str) and expected.isascii() and expected.isdigit():
        expected = int(expected)
    if isinstance(expected, bool) or not isinstance(expected, int) or not 100 <= expected <= 599:
        raise ValueError(f"expected an HTTP status code (100-599), got {expected!r}")
    return expected


def evaluate(response: Response, expected: int) -> Verdict:
    if response.status == expected:
        return success(f"status {response.status}")
    return failure(f"status {response.status}, expected {expected}")
