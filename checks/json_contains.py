"""``json-contains: [/json/pointer, …]``: every JSON pointer resolves in the body."""

from __future__ import annotations

from typing import Any

from checks import pointer
from checks.base import (
    NotJSON,
    Response,
    Verdict,
    body_json,
    check_list,
    error,
    failure,
    success,
)

NAME = "json-contains"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> list[str]:
    return [pointer.check(p) for p in check_list(expected, "[/status, /items/0]")]


def evaluate(response: Response, expected: list[str]) -> Verdict:
    try:
        document = body_json(response)
    except NotJSON as exc:
        return error(str(exc))
    missing = [p for p in expected if pointer.resolve(document, p) is pointer.MISSING]
    if missing:
        return failure(f"not in the JSON body: {', '.join(missing)}")
    return success(f"found {', '.join(expected)}")
