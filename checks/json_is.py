"""``json-is: '{"a": 1}'``: the whole JSON body equals the expected document.

Argos takes the document as JSON text; a YAML mapping or list is accepted too.
The expected value is kept as canonical JSON text so that ``null`` survives.
"""

from __future__ import annotations

import json
from typing import Any

from checks.base import (
    NotJSON,
    Response,
    Verdict,
    as_text,
    body_json,
    error,
    failure,
    show,
    success,
)
from checks.json_has import equal

NAME = "json-is"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> str:
    expected = as_text(expected)
    if isinstance(expected, str):
        try:
            document = json.loads(expected)
        except ValueError as exc:
            raise ValueError(f"expected a JSON document, {exc}: {expected!r}") from None
    elif isinstance(expected, dict | list):
        document = expected
    else:
        raise ValueError(f"expected a JSON document such as '{{\"a\": 1}}', got {expected!r}")
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def evaluate(response: Response, expected: str) -> Verdict:
    try:
        document = body_json(response)
    except NotJSON as exc:
        return error(str(exc))
    if equal(document, json.loads(expected)):
        return success(f"body is {show(document)}")
    return failure(f"body is {show(document)}, expected {expected}")
