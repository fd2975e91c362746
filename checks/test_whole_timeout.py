"""A check's ``timeout`` bounds the whole check, every step of it (docs/architecture.md,
"Agents observe"), against servers on loopback that take their time (tests/slowservers.py).

Each server waits most of the timeout where a server may, then holds on without a word. The
steps used to have a timeout each: a WebSocket check waited 10 s more (aiohttp's own wait)
for a close the server never answers, and each message sent had a full timeout after the
handshake; a DNS query truncated late had a full timeout again over TCP; a TLS or STARTTLS
check waited 1 s more for a TLS close the server never answers. The cases run at once, as
an agent runs its requests.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from checks import dns_rcode_is, tcp_connect, websocket_reply
from events.types import CheckCompleted
from tests.probing import probe_all
from tests.slowservers import SlowServers, SlowSockets

TIMEOUT = 2.0
#: Where the servers wait: most of the timeout, and still well within it.
LATE = 0.75 * TIMEOUT
#: How far past its timeout a check may end: the time a busy machine takes to run the
#: deadline's callback and write the completion, well under what a step used to add.
SLACK = 0.25

REPLY = websocket_reply.NAME
CONNECT = tcp_connect.NAME
RCODE = dns_rcode_is.NAME
PING = {"send": "ping", "like": "^pong: ping$"}

Checks = list[tuple[str, Any]]
Outcomes = list[tuple[str, str]]

#: id, URL ({port} of each server), the checks of the request, and their outcomes.
ROWS: list[tuple[str, str, Checks, Outcomes]] = [
    (
        "ws-close-never-answered",
        "ws://127.0.0.1:{ws}/noclose",
        [(REPLY, PING)],
        [("success", "reply 'pong: ping'")],
    ),
    (
        "wss-close-never-answered",
        "wss://127.0.0.1:{wss}/noclose",
        [(REPLY, PING)],
        [("success", "reply 'pong: ping'")],
    ),
    (
        "ws-late-replies-share-one-timeout",
        "ws://127.0.0.1:{ws}/late",
        [(REPLY, {"send": "a", "like": "^pong: a$"}), (REPLY, {"send": "b", "like": "^pong"})],
        [("success", "reply 'pong: a'"), ("failure", "no reply to 'b'")],
    ),
    (
        "dns-truncated-late-then-tcp-silent",
        "dns://www.example.test?resolver=127.0.0.1:{dns}",
        [(RCODE, "NOERROR")],
        [("failure", "timeout: no answer within 2s")],
    ),
    (
        "tls-late-handshake-close-never-answered",
        "tls://127.0.0.1:{tls}",
        [(CONNECT, True)],
        [("success", "")],
    ),
    (
        "pop3-late-greeting-stls-close-never-answered",
        "pop3://127.0.0.1:{pop3}",
        [(CONNECT, True)],
        [("success", "")],
    ),
]
CASES = [pytest.param(url, outcomes, id=name) for name, url, _, outcomes in ROWS]


@pytest.fixture(scope="module")
def done(ca: trustme.CA) -> Iterator[dict[str, CheckCompleted]]:
    """Each case's completion, by URL, all run at once."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with SlowSockets(tls, LATE) as sockets, SlowServers(tls, LATE) as servers:
        ports = {
            "ws": sockets.port,
            "wss": sockets.tls_port,
            "dns": servers.dns,
            "tls": servers.tls,
            "pop3": servers.pop3,
        }

        async def run_all() -> list[CheckCompleted]:
            return await asyncio.gather(
                *(
                    probe_all(url.format(**ports), checks, client, TIMEOUT)
                    for _, url, checks, _ in ROWS
                )
            )

        completions = asyncio.run(run_all())
        yield {url: c for (_, url, _, _), c in zip(ROWS, completions, strict=True)}


@pytest.mark.parametrize(("url", "outcomes"), CASES)
def test_the_whole_check_ends_within_its_timeout(
    done: dict[str, CheckCompleted], url: str, outcomes: Outcomes
) -> None:
    completion = done[url]
    got = [(o.status, o.detail) for o in completion.outcomes]
    assert [status for status, _ in got] == [status for status, _ in outcomes], got
    for (_, detail), (_, says) in zip(got, outcomes, strict=True):
        assert says in detail
    run = completion.at - completion.started  # the request's run_ms, in seconds
    assert run <= TIMEOUT + SLACK, f"ran {run:.2f} s"
    elapsed = completion.observation.elapsed_ms
    assert elapsed is not None and elapsed <= (TIMEOUT + SLACK) * 1000
