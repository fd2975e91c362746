"""``json-like: {/pointer: regex}``: the regex is found in the value at each pointer.

A value that is not a string is matched as its JSON text (``42``, ``true``).
"""

from __future__ import annotations

import json
from typing import Any

from checks import pointer
from checks.base import (
    NotJSON,
    Response,
    Verdict,
    as_text,
    body_json,
    check_mapping,
    check_regex,
    error,
    failure,
    regex,
    show,
    success,
)

NAME = "json-like"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> dict[str, str]:
    pairs = check_mapping(expected, "{/version: ^2\\.}")
    return {
        pointer.check(p): check_regex(as_text(value, floats=True)) for p, value in pairs.items()
    }


def evaluate(response: Response, expected: dict[str, str]) -> Verdict:
    try:
        document = body_json(response)
    except NotJSON as exc:
        return error(str(exc))
    wrong = []
    for p, pattern in expected.items():
        got = pointer.resolve(document, p)
        if got is pointer.MISSING:
            wrong.append(f"{p} is missing")
            continue
        text = got if isinstance(got, str) else json.dumps(got)
        if not regex(pattern).search(text):
            wrong.append(f"{p} is {show(got)}, which does not match {pattern!r}")
    if wrong:
        return failure("; ".join(wrong))
    return success("; ".join(f"{p} matches {pat!r}" for p, pat in expected.items()))
