"""WebSocket targets against a real aiohttp WebSocket server on loopback (tests/wsserver.py)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme

from checks import ssl_certificate_expiration, tcp_connect, websocket_reply
from tests.probing import grade, probe
from tests.wsserver import WSServer


@pytest.fixture(scope="module")
def ws_server(ca: trustme.CA) -> Iterator[WSServer]:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    with WSServer(tls) as server:
        yield server


def _url(server: WSServer, scheme: str, path: str) -> str:
    port = server.port if scheme == "ws" else server.tls_port
    return f"{scheme}://127.0.0.1:{port}{path}"


def _client(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


REPLY = websocket_reply.NAME
CONNECT = tcp_connect.NAME
PING = {"send": "ping", "like": "^pong: ping$"}

CASES = [
    pytest.param("ws", "/echo", CONNECT, True, "success", "", id="ws-handshake"),
    pytest.param("wss", "/echo", CONNECT, True, "success", "", id="wss-handshake-verified"),
    pytest.param("ws", "/echo", REPLY, PING, "success", "reply 'pong: ping'", id="ws-answered"),
    pytest.param("wss", "/echo", REPLY, PING, "success", "reply 'pong: ping'", id="wss-answered"),
    pytest.param(
        "ws",
        "/echo",
        REPLY,
        {"send": "ping", "like": "^PONG"},
        "failure",
        "reply 'pong: ping' does not match '^PONG'",
        id="ws-reply-does-not-match",
    ),
    pytest.param(
        "ws", "/silent", REPLY, PING, "failure", "no reply to 'ping'", id="ws-silent-server"
    ),
    pytest.param(
        "ws", "/close", REPLY, PING, "failure", "no reply to 'ping'", id="ws-closed-at-once"
    ),
    pytest.param(
        "ws",
        "/page",
        CONNECT,
        True,
        "failure",
        "websocket: handshake refused: HTTP 200 Invalid response status",
        id="ws-plain-page-refuses-handshake",
    ),
    pytest.param(
        "ws", "/nowhere", CONNECT, True, "failure", "handshake refused: HTTP 404", id="ws-404"
    ),
]


@pytest.mark.parametrize(("scheme", "path", "kind", "expected", "status", "says"), CASES)
async def test_websocket(ws_server, ca, scheme, path, kind, expected, status, says):
    done = await probe(_url(ws_server, scheme, path), kind, expected, _client(ca), timeout=1.0)
    (outcome,) = done.outcomes
    assert outcome.status == status, outcome.detail
    assert says in outcome.detail


async def test_wss_certificate_graded(ws_server, ca):
    url = _url(ws_server, "wss", "/echo")
    done = await probe(url, ssl_certificate_expiration.NAME, "on-check", _client(ca))
    assert grade(done)[0] == "ok"
    assert done.observation.facts["certificate"]["names"] == ["127.0.0.1"]


async def test_wss_untrusted_fails(ws_server):
    done = await probe(_url(ws_server, "wss", "/echo"), CONNECT, True, _client(trustme.CA()))
    assert done.outcomes[0].detail.startswith("tls: "), done.outcomes[0].detail


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_a_name_that_does_not_resolve_is_told_alike_by_every_agent(scheme):
    """No object's address in the reason (aiohttp quoted the repr of the SSL context it was
    given): two agents, each with its own context, say the same."""
    url = f"{scheme}://name-that-does-not-exist.invalid/"
    first, second = [await probe(url, CONNECT, True, timeout=5.0) for _ in range(2)]
    assert first.observation.error_kind == "dns", first.observation
    assert " at 0x" not in (first.observation.error or "")
    assert first.observation.error == second.observation.error


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("ping", id="text-alone"),
        pytest.param({"send": "ping"}, id="no-like"),
        pytest.param({"send": "", "like": "x"}, id="empty-send"),
        pytest.param({"send": "ping", "like": "(x"}, id="bad-pattern"),
    ],
)
def test_parse_refuses(value):
    with pytest.raises(ValueError):
        websocket_reply.parse(value)
