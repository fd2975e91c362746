"""The DNS checks against a real DNS server on loopback (tests/dnsserver.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checks import dns_answer_contains, dns_answer_like, dns_rcode_is
from tests.dnsserver import DNSServer, silent_port
from tests.probing import probe


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


CONTAINS = dns_answer_contains.NAME
LIKE = dns_answer_like.NAME
RCODE = dns_rcode_is.NAME

CASES = [
    pytest.param(
        "www.example.test", "A", CONTAINS, ["192.0.2.10"], "success", "", id="a-has-address"
    ),
    pytest.param(
        "www.example.test",
        "A",
        CONTAINS,
        ["192.0.2.10", "192.0.2.11"],
        "success",
        "",
        id="a-has-both",
    ),
    pytest.param(
        "www.example.test",
        "A",
        CONTAINS,
        ["192.0.2.99"],
        "failure",
        '["192.0.2.99"] not among',
        id="a-missing-address",
    ),
    pytest.param(
        "www.example.test", "AAAA", CONTAINS, "2001:db8::10", "success", "", id="aaaa-one-value"
    ),
    pytest.param(
        "alias.example.test",
        "CNAME",
        CONTAINS,
        ["WWW.example.test."],
        "success",
        "",
        id="cname-case-and-dot-ignored",
    ),
    pytest.param(
        "example.test",
        "MX",
        CONTAINS,
        ["10 mail.example.test"],
        "success",
        "",
        id="mx-preference-and-host",
    ),
    pytest.param("example.test", "MX", LIKE, r"^20 backup\.", "success", "", id="mx-like"),
    pytest.param(
        "example.test", "TXT", LIKE, r"^v=spf1 .* -all$", "success", "", id="txt-spf-like"
    ),
    pytest.param(
        "example.test", "TXT", LIKE, r"^v=DMARC1", "failure", "no answer matches", id="txt-not-like"
    ),
    pytest.param(
        "example.test",
        "NS",
        CONTAINS,
        ["ns1.example.test", "ns2.example.test"],
        "success",
        "",
        id="ns-both",
    ),
    pytest.param(
        "example.test", "SOA", LIKE, r"^ns1\.example\.test hostmaster", "success", "", id="soa-like"
    ),
    pytest.param(
        "big.example.test", "TXT", LIKE, r" 11$", "success", "", id="truncated-udp-retried-over-tcp"
    ),
    pytest.param(
        "gone.example.test",
        "A",
        CONTAINS,
        ["192.0.2.10"],
        "failure",
        "NXDOMAIN: the name does not exist",
        id="nxdomain-fails-in-words",
    ),
    pytest.param(
        "x.servfail.test",
        "A",
        CONTAINS,
        ["192.0.2.10"],
        "failure",
        "SERVFAIL: the resolver could not get an answer",
        id="servfail-told-apart",
    ),
    pytest.param(
        "www.example.test",
        "MX",
        CONTAINS,
        ["10 mail.example.test"],
        "failure",
        "no MX record for www.example.test (NODATA)",
        id="nodata",
    ),
    pytest.param(
        "gone.example.test", "A", RCODE, "NXDOMAIN", "success", "", id="rcode-nxdomain-expected"
    ),
    pytest.param(
        "x.servfail.test",
        "A",
        RCODE,
        "NXDOMAIN",
        "failure",
        "SERVFAIL (the resolver could not get an answer), expected NXDOMAIN",
        id="rcode-servfail-is-not-nxdomain",
    ),
    pytest.param(
        "www.example.test", "MX", RCODE, "noerror", "success", "", id="rcode-noerror-without-data"
    ),
]


@pytest.mark.parametrize(("name", "rtype", "kind", "expected", "status", "says"), CASES)
async def test_dns(dns_server, name, rtype, kind, expected, status, says):
    url = f"dns://{name}?type={rtype}&resolver={dns_server.address}"
    done = await probe(url, kind, expected)
    (outcome,) = done.outcomes
    assert outcome.status == status, outcome.detail
    assert says in outcome.detail
    facts = done.observation.facts
    assert facts["resolver"] == dns_server.address
    assert facts["type"] == rtype


async def test_answers_are_observed(dns_server):
    url = f"dns://www.example.test?type=A&resolver={dns_server.address}"
    done = await probe(url, CONTAINS, ["192.0.2.10"])
    assert done.observation.facts["answers"] == ["192.0.2.10", "192.0.2.11"]
    assert done.observation.facts["rcode"] == "NOERROR"
    assert done.observation.facts["ttl"] == 300


async def test_nul_in_an_answer_is_kept_out_of_the_log(dns_server):
    """A TXT record holding a NUL byte: the log (and PostgreSQL) admit no NUL character."""
    url = f"dns://nul.example.test?type=TXT&resolver={dns_server.address}"
    done = await probe(url, LIKE, "^before.after$")
    assert done.outcomes[0].status == "success", done.outcomes[0].detail
    assert done.observation.facts["answers"] == ["before\ufffdafter"]


async def test_silent_resolver_times_out():
    url = f"dns://www.example.test?resolver=127.0.0.1:{silent_port()}"
    done = await probe(url, CONTAINS, ["192.0.2.10"], timeout=0.5)
    assert done.outcomes[0].status == "failure"
    assert done.outcomes[0].detail == "timeout: no answer within 0.5s"


REFUSED = [
    pytest.param(dns_answer_contains, [], "expected a value or a list", id="contains-empty"),
    pytest.param(
        dns_answer_contains, {"a": 1}, "expected a value or a list", id="contains-mapping"
    ),
    pytest.param(dns_answer_like, "(x", "invalid regular expression", id="like-bad-regex"),
    pytest.param(dns_rcode_is, "GONE", "expected a response code", id="rcode-unknown"),
    pytest.param(dns_rcode_is, 3, "expected a response code", id="rcode-number"),
]


@pytest.mark.parametrize(("module", "value", "message"), REFUSED)
def test_parse_refuses(module, value, message):
    with pytest.raises(ValueError, match=message):
        module.parse(value)
