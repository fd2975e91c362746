"""``dns-answer-like: 'regex'``: some answer matches the pattern (beyond Argos).

For ``dns://`` targets; the pattern is searched (``re.search``) in each answer
as shown (``10 mail.example.org`` for MX, the text of a TXT record).
NXDOMAIN, SERVFAIL and an empty answer fail, each said in its own words.
"""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, check_regex, failure, regex, show, success
from checks.dnsanswer import not_answered

NAME = "dns-answer-like"
SCHEMES = {"dns"}


def parse(expected: Any) -> str:
    return check_regex(expected)


def evaluate(response: Response, expected: str) -> Verdict:
    bad = not_answered(response)
    if bad is not None:
        return bad
    answers = response.facts["answers"]
    found = [a for a in answers if regex(expected).search(a)]
    if not found:
        return failure(f"no answer matches {expected!r}: {show(answers)}")
    return success(f"{show(found)} matches {expected!r}")
