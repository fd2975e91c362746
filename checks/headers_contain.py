"""``headers-contain: [name, …]``: every header is present (names are case-insensitive)."""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, check_list, check_text, failure, success

NAME = "headers-contain"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> list[str]:
    names = [check_text(name).lower() for name in check_list(expected, "[content-type]")]
    return sorted(set(names))


def evaluate(response: Response, expected: list[str]) -> Verdict:
    missing = [name for name in expected if name not in response.headers]
    if missing:
        return failure(f"missing header(s): {', '.join(missing)}")
    return success(f"header(s) present: {', '.join(expected)}")
