"""Domain expiry over RDAP against a real registry server on loopback (tests/rdapserver.py),
graded by ``ssl.thresholds`` (``on-check``) or by the check's own limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checks import domain_expiration
from checks.observe import rdap
from tests.probing import grade, probe
from tests.rdapserver import RDAPServer

NAME = domain_expiration.NAME
LIMITS = {"warning": "30d", "critical": "7d"}


@pytest.fixture(scope="module")
def registry() -> Iterator[RDAPServer]:
    with RDAPServer() as server:
        yield server


CASES = [
    pytest.param("example.test", "on-check", "ok", "domain expires in", id="300-days-ok"),
    pytest.param(
        "urgent.test",
        "on-check",
        "warning",
        "domain expires in",
        id="3-days-warning-by-ssl-thresholds",
    ),
    pytest.param("gone.test", "on-check", "critical", "domain expires in -", id="expired-critical"),
    pytest.param(
        "soon.test", "on-check", "ok", "domain expires in", id="20-days-ok-by-ssl-thresholds"
    ),
    pytest.param(
        "soon.test", LIMITS, "warning", "domain expires in", id="20-days-warning-by-own-limits"
    ),
    pytest.param(
        "urgent.test",
        LIMITS,
        "critical",
        "domain expires in",
        id="3-days-critical-by-own-limits",
    ),
    pytest.param(
        "noexpiry.test",
        "on-check",
        "unknown",
        "no expiration date",
        id="record-without-expiry-unknown",
    ),
    pytest.param(
        "nobody.test", "on-check", "unknown", "not found (404)", id="unknown-domain-unknown"
    ),
]


@pytest.mark.parametrize(("domain", "expected", "severity", "says"), CASES)
async def test_domain_expiration(registry, domain, expected, severity, says):
    done = await probe(f"rdap://{domain}?server={registry.url}/rdap/", NAME, expected)
    got, reason = grade(done, expected)
    assert got == severity, reason
    assert says in reason


async def test_record_is_observed(registry):
    done = await probe(f"rdap://example.test?server={registry.url}/rdap/", NAME, "on-check")
    facts = done.observation.facts
    assert facts["registrar"] == "Test Registrar SA"
    assert facts["status"] == ["active", "client transfer prohibited"]
    assert facts["registered"] == "2001-02-03T04:05:06Z"
    assert 299 < facts["days_left"] <= 300
    assert facts["server"] == f"{registry.url}/rdap/domain/example.test"


async def test_long_record_sent_in_pieces(registry):
    done = await probe(f"rdap://example.test?server={registry.url}/long/", NAME, "on-check")
    assert grade(done, "on-check")[0] == "ok", done.outcomes[0].detail
    assert done.observation.facts["registrar"] == "Test Registrar SA"


async def test_answer_not_json(registry):
    done = await probe(f"rdap://example.test?server={registry.url}/broken/", NAME, "on-check")
    assert done.outcomes[0].detail.endswith("the answer is not JSON")
    assert grade(done, "on-check")[0] == "unknown"


NOT_A_RECORD = "not an RDAP domain record"
ODD_CASES = [
    pytest.param("odd/a-list", f"{NOT_A_RECORD} (Expected `object`, got `array`)", id="a-list"),
    pytest.param(
        "odd/events-null",
        f"{NOT_A_RECORD} (Expected `array`, got `null` - at `$.events`)",
        id="events-null",
    ),
    pytest.param(
        "odd/event-action-a-list",
        f"{NOT_A_RECORD} (Expected `str`, got `array` - at `$.events[0].eventAction`)",
        id="event-action-a-list",
    ),
    pytest.param(
        "odd/entity-a-string",
        f"{NOT_A_RECORD} (Expected `object`, got `str` - at `$.entities[0]`)",
        id="entity-a-string",
    ),
    pytest.param(
        "odd/roles-null",
        f"{NOT_A_RECORD} (Expected `array`, got `null` - at `$.entities[0].roles`)",
        id="roles-null",
    ),
    pytest.param(
        "odd/vcard-fn-alone",
        f"{NOT_A_RECORD} (Expected `array` of length >= 4 - at `$.entities[0].vcardArray[1][0]`)",
        id="vcard-fn-without-value",
    ),
    pytest.param(
        "odd/status-a-number",
        f"{NOT_A_RECORD} (Expected `array`, got `int` - at `$.status`)",
        id="status-a-number",
    ),
    pytest.param("huge", "the answer is longer than 1 MiB", id="record-past-1-mib"),
]


@pytest.mark.parametrize(("path", "says"), ODD_CASES)
async def test_an_answer_that_is_no_record_says_so(registry, path, says):
    """A registry's odd answer is unknown with what is wrong in it, never a Python error."""
    done = await probe(f"rdap://example.test?server={registry.url}/{path}/", NAME, "on-check")
    asked = f"{registry.url}/{path}/domain/example.test"
    assert done.outcomes[0].detail == f"rdap: {asked}: {says}"
    assert grade(done, "on-check")[0] == "unknown"


async def test_a_redirect_loop_says_so(registry):
    done = await probe(f"rdap://example.test?server={registry.url}/loop/", NAME, "on-check")
    assert done.outcomes[0].detail == (
        f"http: too many redirects (10), the last to {registry.url}/loop/domain/example.test"
    )


async def test_a_server_address_of_the_other_ip_version_says_so():
    done = await probe("rdap://example.test?server=http://[::1]:9/", NAME, "on-check")
    assert done.outcomes[0].detail == (
        "connect: ::1 is an IPv6 address, and this check runs over IPv4"
    )


async def test_server_found_through_bootstrap(registry, monkeypatch):
    monkeypatch.setattr(rdap, "BOOTSTRAP", f"{registry.url}/bootstrap/dns.json")
    monkeypatch.setattr(rdap, "_bootstrap", {})
    done = await probe("rdap://example.test", NAME, "on-check")
    assert done.observation.facts["server"] == f"{registry.url}/rdap/domain/example.test"
    assert grade(done, "on-check")[0] == "ok"
    other = await probe("rdap://example.nowhere", NAME, "on-check")
    assert other.outcomes[0].detail == (
        "rdap: IANA's bootstrap names no RDAP server for example.nowhere"
    )


async def test_a_bootstrap_file_that_is_none_says_so(registry, monkeypatch):
    bootstrap = f"{registry.url}/odd-bootstrap/dns.json"
    monkeypatch.setattr(rdap, "BOOTSTRAP", bootstrap)
    monkeypatch.setattr(rdap, "_bootstrap", {})
    done = await probe("rdap://example.test", NAME, "on-check")
    assert done.outcomes[0].detail == (
        f"rdap: {bootstrap}: not an RDAP bootstrap file "
        "(Expected `array` of length 2 - at `$.services[0]`)"
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("soon", id="word"),
        pytest.param({"warning": "7d", "critical": "30d"}, id="warning-shorter"),
        pytest.param({"later": "7d"}, id="unknown-limit"),
        pytest.param({"warning": "x"}, id="not-a-duration"),
    ],
)
def test_parse_refuses(value):
    with pytest.raises(ValueError):
        domain_expiration.parse(value)
