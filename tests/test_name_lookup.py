"""A name server that never answers: every kind of check that looks a name up ends within its
timeout and says that the lookup timed out, not that the target did not answer.

The C library waits 5 s for the silent server (tests/hungresolver.py), the checks 1 s: an
ICMP ping used to wait the library's 5 s past its timeout, then report a "temporary failure
in name resolution"; the others ended in time but blamed the target ("no answer within 1s")."""

from __future__ import annotations

from typing import Any

import pytest

from checks import domain_expiration, packet_loss, status_is, tcp_connect
from events.types import CheckCompleted
from tests.hungresolver import Case, results

HOST = "hung.example.test"
TIMEOUT = 1.0
LOOKUP = f"dns: name lookup of {HOST} timed out after 1s"
LOSS = {"warning": "20%", "critical": "50%"}

CASES = [
    pytest.param(f"icmp://{HOST}?count=2", packet_loss.NAME, LOSS, LOOKUP, id="icmp"),
    pytest.param(f"tcp://{HOST}:5432", tcp_connect.NAME, True, LOOKUP, id="tcp"),
    pytest.param(f"tls://{HOST}:993", tcp_connect.NAME, True, LOOKUP, id="tls"),
    pytest.param(f"smtp://{HOST}:587", tcp_connect.NAME, True, LOOKUP, id="smtp-starttls"),
    pytest.param(f"imap://{HOST}", tcp_connect.NAME, True, LOOKUP, id="imap-starttls"),
    pytest.param(f"pop3://{HOST}", tcp_connect.NAME, True, LOOKUP, id="pop3-starttls"),
    pytest.param(f"ws://{HOST}/socket", tcp_connect.NAME, True, LOOKUP, id="ws"),
    pytest.param(f"wss://{HOST}/socket", tcp_connect.NAME, True, LOOKUP, id="wss"),
    pytest.param(f"http://{HOST}/", status_is.NAME, 200, LOOKUP, id="http"),
    pytest.param(f"https://{HOST}/health", status_is.NAME, 200, LOOKUP, id="https"),
    pytest.param(
        f"rdap://example.org?server=https://{HOST}/",
        domain_expiration.NAME,
        "on-check",
        LOOKUP,
        id="rdap-server",
    ),
    # No name to look up (the resolver is the system's, an address): the query itself times out.
    pytest.param(
        f"dns://{HOST}?type=A",
        "dns-rcode-is",
        "NOERROR",
        "timeout: no answer within 1s",
        id="dns-query-not-a-lookup",
    ),
]


@pytest.fixture(scope="module")
def hung() -> dict[str, CheckCompleted]:
    cases: list[Case] = [
        (url, kind, expected) for url, kind, expected, _ in (p.values for p in CASES)
    ]
    return results(cases, TIMEOUT)


@pytest.mark.parametrize(("url", "kind", "expected", "says"), CASES)
def test_a_hung_name_server_fails_the_check_within_its_timeout(
    hung: dict[str, CheckCompleted], url: str, kind: str, expected: Any, says: str
) -> None:
    (outcome,) = hung[url].outcomes
    assert outcome.status == "failure"
    assert outcome.detail == says
