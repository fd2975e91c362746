"""``json-has: {/pointer: value}``: the value at each pointer equals the expected one."""

from __future__ import annotations

from typing import Any

from checks import pointer
from checks.base import (
    NotJSON,
    Response,
    Verdict,
    body_json,
    check_mapping,
    error,
    failure,
    show,
    success,
)

NAME = "json-has"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> dict[str, Any]:
    pairs = check_mapping(expected, "{/status: up}")
    return {pointer.check(p): value for p, value in pairs.items()}


def equal(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, though Python says so."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def evaluate(response: Response, expected: dict[str, Any]) -> Verdict:
    try:
        document = body_json(response)
    except NotJSON as exc:
        return error(str(exc))
    wrong = []
    for p, value in expected.items():
        got = pointer.resolve(document, p)
        if got is pointer.MISSING:
            wrong.append(f"{p} is missing")
        elif not equal(got, value):
            wrong.append(f"{p} is {show(got)}, expected {show(value)}")
    if wrong:
        return failure("; ".join(wrong))
    return success("; ".join(f"{p} is {show(v)}" for p, v in expected.items()))
