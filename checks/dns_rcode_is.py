"""``dns-rcode-is: NXDOMAIN``: the resolver answers with this response code (beyond Argos).

For ``dns://`` targets: that a name is gone (NXDOMAIN), or that it exists even
without records of the type asked (NOERROR). SERVFAIL is told from NXDOMAIN.
"""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, failure, success
from checks.dnsanswer import RCODES

NAME = "dns-rcode-is"
SCHEMES = {"dns"}


def parse(expected: Any) -> str:
    code = str(expected).upper() if isinstance(expected, str) else None
    if code not in RCODES:
        raise ValueError(f"expected a response code ({', '.join(RCODES)}), got {expected!r}")
    return code


def evaluate(response: Response, expected: str) -> Verdict:
    got = response.facts.get("rcode", "?")
    meaning = RCODES.get(got, "unknown code")
    if got != expected:
        return failure(f"{got} ({meaning}), expected {expected}")
    return success(f"{got} ({meaning})")
