"""What the DNS checks share: the response code in words, and how answers compare."""

from __future__ import annotations

from checks.base import Response, Verdict, failure

#: Response codes an operator may expect, and what each means.
RCODES = {
    "NOERROR": "the name exists",
    "NXDOMAIN": "the name does not exist",
    "SERVFAIL": "the resolver could not get an answer",
    "REFUSED": "the resolver refused the query",
    "FORMERR": "the resolver could not read the query",
    "NOTIMP": "the resolver does not implement the query",
}


def normal(value: str) -> str:
    """Names compare without case and final dot, as DNS does."""
    return value.strip().rstrip(".").lower()


def not_answered(response: Response) -> Verdict | None:
    """The failure when there are no records to look at: an error code, or no data."""
    facts = response.facts
    rcode = facts.get("rcode", "?")
    if rcode != "NOERROR":
        meaning = RCODES.get(rcode, "the resolver answered with an error")
        return failure(f"{rcode}: {meaning} ({facts.get('name')} {facts.get('type')})")
    if not facts.get("answers"):
        return failure(f"no {facts.get('type')} record for {facts.get('name')} (NODATA)")
    return None
