"""``dns://NAME?type=MX&resolver=IP:PORT``: one DNS query, its response code and answers.

Without ``resolver`` the first name server of the system (/etc/resolv.conf) is
asked. The query goes over UDP and again over TCP when the answer is
truncated, both within the check's timeout. Any response code is an answer
(NXDOMAIN and SERVFAIL are told apart by the checks); only silence or a garbled
reply fails the group.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from checks.base import Response
from checks.observe.common import Answer, Budget, ProbeContext, ProbeError, named
from checks.resolver import resolver
from events.types import CheckRequested, Observation

MAX_ANSWERS = 50


@cache
def system_resolver() -> str:
    try:
        servers = dns.resolver.Resolver().nameservers
    except dns.resolver.NoResolverConfiguration:
        servers = []
    if not servers:
        raise ProbeError("dns", "no resolver given and none configured in /etc/resolv.conf")
    return str(servers[0])


def render(rdata: Any) -> str:
    """A record as an operator writes it: names without the final dot, TXT strings unquoted."""
    if rdata.rdtype == dns.rdatatype.TXT:
        return "".join(s.decode("utf-8", errors="replace") for s in rdata.strings)
    return str(rdata.to_text(relativize=False)).replace(". ", " ").rstrip(".")


async def observe(req: CheckRequested, url: str, ctx: ProbeContext) -> Answer:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    rtype = query.get("type", "A")
    budget = Budget(req.timeout)
    try:
        address, port = (
            resolver(query["resolver"])
            if "resolver" in query
            else (
                system_resolver(),
                53,
            )
        )
        message = dns.message.make_query(parts.hostname or "", rtype)
        async with budget.bound():  # the retry over TCP gets what the UDP query left
            reply = await dns.asyncquery.udp(message, address, port=port)
            if reply.flags & dns.flags.TC:
                reply = await dns.asyncquery.tcp(message, address, port=port)
    except dns.exception.DNSException as exc:
        return budget.failed(ProbeError("dns", named(exc)))
    except (OSError, ProbeError) as exc:  # the deadline's TimeoutError among them
        return budget.failed(exc)
    elapsed = budget.ms()
    wanted = dns.rdatatype.from_text(rtype)
    # Sorted: a record set has no order, and locations compare their answers.
    answers = sorted(
        render(rdata) for rrset in reply.answer if rrset.rdtype == wanted for rdata in rrset
    )[:MAX_ANSWERS]
    facts: dict[str, Any] = {
        "resolver": f"{address}:{port}",
        "name": parts.hostname,
        "type": rtype,
        "rcode": dns.rcode.to_text(reply.rcode()),
        "answers": answers,
    }
    ttls = [rrset.ttl for rrset in reply.answer if rrset.rdtype == wanted]
    if ttls:
        facts["ttl"] = min(ttls)
    return (
        Observation(elapsed_ms=round(elapsed, 2), facts=facts),
        Response(0, elapsed_ms=elapsed, url=url, facts=facts),
    )
