"""``dns-answer-contains: [192.0.2.1, …]``: every value is among the answers (beyond Argos).

For ``dns://NAME?type=T`` targets. Values are written as the answers are shown:
``192.0.2.1``, ``2001:db8::1``, ``10 mail.example.org`` (MX), the text of a TXT
record, ``ns1.example.org`` (NS, CNAME); names compare without case or final dot.
NXDOMAIN, SERVFAIL and an empty answer fail, each said in its own words.
"""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, check_text, failure, show, success
from checks.dnsanswer import normal, not_answered

NAME = "dns-answer-contains"
SCHEMES = {"dns"}


def parse(expected: Any) -> list[str]:
    values = [expected] if isinstance(expected, str) else expected
    if not isinstance(values, list) or not values:
        raise ValueError(
            f"expected a value or a list of values such as [192.0.2.1], got {expected!r}"
        )
    return [
        check_text(str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
        for v in values
    ]


def evaluate(response: Response, expected: list[str]) -> Verdict:
    bad = not_answered(response)
    if bad is not None:
        return bad
    answers = response.facts["answers"]
    have = {normal(a) for a in answers}
    missing = [v for v in expected if normal(v) not in have]
    if missing:
        return failure(f"{show(missing)} not among the answers {show(answers)}")
    return success(f"answers {show(answers)}")
