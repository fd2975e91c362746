"""``status-in: [200, 302]``: the status code is one of the list."""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, check_list, failure, status_code, success

NAME = "status-in"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> list[int]:
    codes = [status_code(code) for code in check_list(expected, "[200, 302]")]
    return sorted(set(codes))


def evaluate(response: Response, expected: list[int]) -> Verdict:
    if response.status in expected:
        return success(f"status {response.status}")
    return failure(f"status {response.status}, expected one of {expected}")
