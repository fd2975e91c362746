"""TLS of mail servers: STARTTLS on SMTP (aiosmtpd), IMAP and POP3, against real servers on
loopback with trustme certificates; the certificate graded by ``ssl.thresholds``."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest
import trustme

from checks import ssl_certificate_expiration, tcp_connect
from tests.mailservers import StreamServer, imap_handler, pop3_handler, smtp_server
from tests.probing import grade, probe


def _server_context(ca: trustme.CA, days: float) -> ssl.SSLContext:
    cert = ca.issue_cert("127.0.0.1", not_after=datetime.now(UTC) + timedelta(days=days))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def mail(ca: trustme.CA) -> Iterator[dict[str, int]]:
    """Ports by server name: each scheme with STARTTLS, without it, and with a short cert."""
    fresh, short = _server_context(ca, 300), _server_context(ca, 3)
    with ExitStack() as stack:
        ports: dict[str, int] = {}
        for name, tls, offer in (("", fresh, True), ("-short", short, True), ("-plain", None, 0)):
            smtp = smtp_server(tls)
            stack.callback(smtp.stop)
            ports[f"smtp{name}"] = smtp.port
            for scheme, handler in (("imap", imap_handler), ("pop3", pop3_handler)):
                server = stack.enter_context(StreamServer(handler(tls or fresh, bool(offer))))
                ports[f"{scheme}{name}"] = server.port
        yield ports


def _client(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


CASES = [
    pytest.param("smtp", "", "success", "ok", id="smtp-starttls-handshake"),
    pytest.param("imap", "", "success", "ok", id="imap-starttls-handshake"),
    pytest.param("pop3", "", "success", "ok", id="pop3-stls-handshake"),
    pytest.param(
        "smtp",
        "-plain",
        "failure",
        "starttls: the server does not offer STARTTLS",
        id="smtp-without-starttls-fails",
    ),
    pytest.param(
        "imap",
        "-plain",
        "failure",
        "starttls: the server does not offer STARTTLS",
        id="imap-without-starttls-fails",
    ),
    pytest.param(
        "pop3",
        "-plain",
        "failure",
        "starttls: the server does not offer STLS",
        id="pop3-without-stls-fails",
    ),
]


@pytest.mark.parametrize(("scheme", "server", "status", "says"), CASES)
async def test_starttls_connect(mail, ca, scheme, server, status, says):
    url = f"{scheme}://127.0.0.1:{mail[scheme + server]}"
    done = await probe(url, tcp_connect.NAME, True, _client(ca))
    (outcome,) = done.outcomes
    assert outcome.status == status, outcome.detail
    assert says in (outcome.detail if status == "failure" else "ok")
    if status == "success":
        cert = done.observation.facts["certificate"]
        assert "127.0.0.1" in cert["names"]
        assert cert["issuer"]
        assert done.observation.facts["greeting"]


CERT_CASES = [
    pytest.param("smtp", "", "ok", id="smtp-certificate-300-days-ok"),
    pytest.param("smtp", "-short", "warning", id="smtp-certificate-3-days-warning"),
    pytest.param("imap", "-short", "warning", id="imap-certificate-3-days-warning"),
    pytest.param("pop3", "-short", "warning", id="pop3-certificate-3-days-warning"),
    pytest.param("smtp", "-plain", "warning", id="smtp-no-starttls-certificate-warning"),
]


@pytest.mark.parametrize(("scheme", "server", "severity"), CERT_CASES)
async def test_certificate_graded_by_thresholds(mail, ca, scheme, server, severity):
    url = f"{scheme}://127.0.0.1:{mail[scheme + server]}"
    done = await probe(url, ssl_certificate_expiration.NAME, "on-check", _client(ca))
    got, reason = grade(done)
    assert got == severity, reason
    if server == "-short":
        assert 2 < done.observation.facts["certificate"]["days_left"] < 3.1


async def test_untrusted_certificate_fails_the_handshake(mail):
    done = await probe(
        f"smtp://127.0.0.1:{mail['smtp']}", tcp_connect.NAME, True, _client(trustme.CA())
    )
    (outcome,) = done.outcomes
    assert outcome.status == "failure"
    assert outcome.detail.startswith("tls: "), outcome.detail


async def test_plain_tls_on_any_port(site, ca):
    done = await probe(f"tls://127.0.0.1:{site.port}", tcp_connect.NAME, True, _client(ca))
    assert done.outcomes[0].status == "success"
    assert done.observation.facts["certificate"]["days_left"] > 1
    assert done.observation.facts["address"] == "127.0.0.1"
