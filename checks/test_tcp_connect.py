import pytest
import trustme

from checks import tcp_connect
from runtime.embedded import free_port

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
