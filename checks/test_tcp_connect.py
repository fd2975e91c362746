import socket
import threading
from collections.abc import Iterator

import pytest
import trustme

from checks import status_is, tcp_connect
from checks.observe.common import ProbeError, describe
from runtime.embedded import free_port
from tests.probing import probe

CASES = [
    pytest.param("tcp", "success", id="tcp-port-open"),
    pytest.param("tls", "success", id="tls-handshake-verified"),
]


@pytest.mark.parametrize(("scheme", "status"), CASES)
async def test_tcp_connect(site, scheme, status):
    outcome = await site.check("", tcp_connect.NAME, True, scheme)
    assert outcome.status == status, outcome.detail


@pytest.mark.parametrize("scheme", [pytest.param("tcp", id="tcp"), pytest.param("tls", id="tls")])
async def test_closed_port_fails_the_group(site, scheme):
    site_port, site.port = site.port, free_port()
    try:
        outcome = await site.check("", tcp_connect.NAME, True, scheme)
    finally:
        site.port = site_port
    assert outcome.status == "failure"
    assert outcome.detail.startswith("connect: ")


async def test_untrusted_certificate_fails(site, ca):

    other = trustme.CA()
    site.ca = other  # the client trusts another CA than the one that signed the site
    try:
        outcome = await site.check("", tcp_connect.NAME, True, "tls")
    finally:
        site.ca = ca
    assert outcome.status == "failure"
    assert outcome.detail.startswith("tls: ")


@pytest.mark.parametrize("value", [pytest.param(False, id="false"), pytest.param(1, id="one")])
def test_parse_refuses(value):
    with pytest.raises(ValueError, match="expected true"):
        tcp_connect.parse(value)


def _hang_up(listener: socket.socket) -> None:
    """Accept, end the sending side at once (the client's handshake meets an end of stream),
    read what the client sends until it gives up."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # the listener was closed: the module is done
        with conn:
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass


@pytest.fixture(scope="module")
def hang_up() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=_hang_up, args=(listener,), daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()


#: A server that hangs up during the TLS handshake: asyncio raises ConnectionResetError()
#: with no text, and the reason used to read "connect: " with nothing after it.
HANG_UPS = [
    pytest.param("tls", "", tcp_connect.NAME, True, id="tls"),
    pytest.param("wss", "/socket", tcp_connect.NAME, True, id="wss"),
    pytest.param("https", "/", status_is.NAME, 200, id="https"),
]


@pytest.mark.parametrize(("scheme", "path", "kind", "expected"), HANG_UPS)
async def test_a_hang_up_during_the_handshake_is_told(hang_up, scheme, path, kind, expected):
    done = await probe(f"{scheme}://127.0.0.1:{hang_up}{path}", kind, expected)
    (outcome,) = done.outcomes
    assert outcome.status == "failure"
    step, _, text = outcome.detail.partition(": ")
    assert step and text.strip(), outcome.detail


#: Every kind of failure says something when the exception says nothing.
SILENT = [
    pytest.param(ConnectionResetError(), ("connect", "ConnectionResetError"), id="reset"),
    pytest.param(OSError(), ("connect", "OSError"), id="os-error"),
    pytest.param(socket.gaierror(), ("dns", "gaierror"), id="resolution"),
    pytest.param(ProbeError("starttls", ""), ("starttls", "ProbeError"), id="probe-error"),
    pytest.param(RuntimeError(), ("http", "RuntimeError"), id="other"),
]


@pytest.mark.parametrize(("exc", "told"), SILENT)
def test_a_silent_exception_is_told_by_its_type(exc, told):
    assert describe(exc, 5.0) == told


#: An address of the other IP version than the check's: aiohttp's connector of one family
#: failed it with a bare AssertionError, an unknown "the agent could not run the check".
OTHER_VERSION = [
    pytest.param("http://[::1]:9/", status_is.NAME, 200, 4, id="http-ipv6-address-over-ipv4"),
    pytest.param("http://127.0.0.1:9/", status_is.NAME, 200, 6, id="http-ipv4-address-over-ipv6"),
    pytest.param("ws://[::1]:9/", tcp_connect.NAME, True, 4, id="ws-ipv6-address-over-ipv4"),
    pytest.param("tcp://[::1]:9", tcp_connect.NAME, True, 4, id="tcp-ipv6-address-over-ipv4"),
    pytest.param("tls://127.0.0.1:9", tcp_connect.NAME, True, 6, id="tls-ipv4-address-over-ipv6"),
]


@pytest.mark.parametrize(("url", "kind", "expected", "version"), OTHER_VERSION)
async def test_an_address_of_the_other_ip_version_fails_saying_so(url, kind, expected, version):
    done = await probe(url, kind, expected, ip_version=version)
    (outcome,) = done.outcomes
    written = 10 - version
    host = "::1" if written == 6 else "127.0.0.1"
    assert (outcome.status, outcome.detail) == (
        "failure",
        f"connect: {host} is an IPv{written} address, and this check runs over IPv{version}",
    )
