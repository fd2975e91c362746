"""Targets beyond HTTP in the configuration: each scheme normalised, each mistake refused
with file:line:col, key path and reason (configuration/targets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from configuration import config


def _write(tmp_path: Path, domain: str, checks: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"general:\n  frequency: 1m\nwebsites:\n  - domain: {domain}\n    checks:\n"
        f"      - {checks}\n"
    )
    return path


ACCEPTED = [
    pytest.param(
        "rdap://example.org",
        "domain-expiration: on-check",
        "rdap://example.org",
        1,
        id="rdap-bootstrap-one-task",
    ),
    pytest.param(
        "'rdap://example.org?server=https://rdap.registry.example/'",
        "domain-expiration: {warning: 30d, critical: 7d}",
        "rdap://example.org?server=https://rdap.registry.example/",
        1,
        id="rdap-own-server",
    ),
    pytest.param(
        "icmp://192.0.2.1",
        "packet-loss: {warning: 20%, critical: 50%}",
        "icmp://192.0.2.1?count=3",
        1,  # an IPv4 address is pinged over IPv4 only (issue 11)
        id="icmp-default-count",
    ),
    pytest.param(
        "'icmp://[2001:db8::1]?count=10'",
        "response-time: {warning: 100ms}",
        "icmp://[2001:db8::1]?count=10",
        1,  # an IPv6 address over IPv6 only
        id="icmp-ipv6-count",
    ),
    pytest.param(
        "wss://chat.example.org/socket?room=1",
        "websocket-reply: {send: ping, like: pong}",
        "wss://chat.example.org/socket?room=1",
        2,
        id="wss-path-and-query-kept",
    ),
    pytest.param(
        "smtp://mail.example.org",
        "tcp-connect: true",
        "smtp://mail.example.org:25",
        2,
        id="smtp-default-port",
    ),
    pytest.param(
        "smtp://mail.example.org:587",
        "ssl-certificate-expiration: on-check",
        "smtp://mail.example.org:587",
        2,
        id="smtp-submission",
    ),
    pytest.param(
        "imap://mail.example.org",
        "tcp-connect: true",
        "imap://mail.example.org:143",
        2,
        id="imap-default-port",
    ),
    pytest.param(
        "pop3://mail.example.org",
        "tcp-connect: true",
        "pop3://mail.example.org:110",
        2,
        id="pop3-default-port",
    ),
    pytest.param(
        "tls://mail.example.org:465",
        "tcp-connect: true",
        "tls://mail.example.org:465",
        2,
        id="tls-any-port",
    ),
    pytest.param(
        "dns://example.org",
        "dns-rcode-is: NOERROR",
        "dns://example.org?type=A",
        1,
        id="dns-defaults-to-a-one-task",
    ),
    pytest.param(
        "'dns://example.org?type=mx&resolver=192.0.2.53'",
        "dns-answer-like: mail",
        "dns://example.org?resolver=192.0.2.53:53&type=MX",
        1,
        id="dns-type-and-resolver",
    ),
    pytest.param(
        "'dns://example.org?resolver=[2001:db8::53]:5353&type=AAAA'",
        "dns-answer-contains: ['2001:db8::1']",
        "dns://example.org?resolver=[2001:db8::53]:5353&type=AAAA",
        1,
        id="dns-ipv6-resolver",
    ),
    pytest.param(
        "smtp://mail.example.org:65535",
        "tcp-connect: true",
        "smtp://mail.example.org:65535",
        2,
        id="port-65535-the-last",
    ),
    pytest.param(
        "'dns://_dmarc.example.org?type=TXT'",
        "dns-answer-like: DMARC1",
        "dns://_dmarc.example.org?type=TXT",
        1,
        id="dns-underscore-label",
    ),
    pytest.param(
        "dns://_sip._tcp.example.org.",
        "dns-rcode-is: NOERROR",
        "dns://_sip._tcp.example.org.?type=A",
        1,
        id="dns-trailing-dot",
    ),
    pytest.param(
        "dns://bücher.example",
        "dns-rcode-is: NOERROR",
        "dns://bücher.example?type=A",
        1,
        id="dns-internationalized",
    ),
    pytest.param(
        "'dns://*.example.org'",
        "dns-rcode-is: NOERROR",
        "dns://*.example.org?type=A",
        1,
        id="dns-wildcard-label",
    ),
    pytest.param(
        "dns://" + "a" * 63 + "." + ".".join(["b" * 61] * 3),
        "dns-rcode-is: NOERROR",
        "dns://" + "a" * 63 + "." + ".".join(["b" * 61] * 3) + "?type=A",
        1,
        id="dns-253-characters",
    ),
]


@pytest.mark.parametrize(("domain", "checks", "url", "tasks"), ACCEPTED)
def test_accepted(tmp_path, domain, checks, url, tasks):
    cfg = config.parse(_write(tmp_path, domain, checks), {})
    assert {t.url for t in cfg.tasks.values()} == {url}
    assert len(cfg.tasks) == tasks


REFUSED = [
    pytest.param(
        "'rdap://example.org?server=rdap.registry.example'",
        "domain-expiration: on-check",
        "4:13: websites[0].domain: server must be an RDAP base URL",
        id="rdap-server-not-a-url",
    ),
    pytest.param(
        "rdap://localhost",
        "domain-expiration: on-check",
        "4:13: websites[0].domain: expected rdap://DOMAIN",
        id="rdap-not-a-domain",
    ),
    pytest.param(
        "icmp://192.0.2.1:80",
        "packet-loss: {critical: 50%}",
        "4:13: websites[0].domain: expected icmp://host (ICMP has no port)",
        id="icmp-with-port",
    ),
    pytest.param(
        "'icmp://192.0.2.1?count=100'",
        "packet-loss: {critical: 50%}",
        "4:13: websites[0].domain: count must be 1-20 echo requests, got '100'",
        id="icmp-too-many",
    ),
    pytest.param(
        "ws://chat.example.org",
        "websocket-reply: {send: ping}",
        "6:26: websites[0].checks[0].websocket-reply: expected {send: TEXT, like: PATTERN}",
        id="ws-reply-without-pattern",
    ),
    pytest.param(
        "smtp://mail.example.org/x",
        "tcp-connect: true",
        "4:13: websites[0].domain: expected smtp://host[:port] (no path)",
        id="smtp-with-path",
    ),
    pytest.param(
        "dns://example.org:53",
        "dns-rcode-is: NOERROR",
        "4:13: websites[0].domain: expected dns://NAME?type=A[&resolver=IP:PORT]",
        id="dns-port-on-name",
    ),
    pytest.param(
        "'dns://example.org?type=PTR'",
        "dns-rcode-is: NOERROR",
        "4:13: websites[0].domain: unknown record type 'PTR' "
        "(known: A, AAAA, CNAME, MX, TXT, NS, SOA)",
        id="dns-unknown-type",
    ),
    pytest.param(
        "'dns://example.org?resolver=dns.google'",
        "dns-rcode-is: NOERROR",
        "4:13: websites[0].domain: the resolver must be an IP address, got 'dns.google'",
        id="dns-resolver-by-name",
    ),
    pytest.param(
        "'dns://example.org?server=192.0.2.1'",
        "dns-rcode-is: NOERROR",
        "4:13: websites[0].domain: unknown parameter 'server' in",
        id="dns-unknown-parameter",
    ),
    pytest.param(
        "dns://example.org",
        "tcp-connect: true",
        "6:9: websites[0].checks[0].tcp-connect: check tcp-connect does not apply to "
        "dns:// targets",
        id="check-not-for-dns",
    ),
    pytest.param(
        "smtp://mail.example.org",
        "dns-answer-like: x",
        "6:9: websites[0].checks[0].dns-answer-like: check dns-answer-like does not apply "
        "to smtp:// targets (only dns://)",
        id="dns-check-not-for-smtp",
    ),
    pytest.param(
        "dns://example.org",
        "dns-rcode-is: GONE",
        "6:23: websites[0].checks[0].dns-rcode-is: expected a response code",
        id="dns-bad-rcode",
    ),
]

PORT = "a port must be a number 1-65535, got"
#: Every scheme with a port refuses one that is not a number, 0 or past 65535 (a mail
#: target used to fall back to its default port, a ws:// one to fail when run).
BAD_PORTS = [
    pytest.param("smtp://127.0.0.1:abc", f"{PORT} 'abc' in 'smtp://127.0.0.1:abc'", id="smtp-abc"),
    pytest.param("imap://127.0.0.1:99999", f"{PORT} '99999'", id="imap-99999"),
    pytest.param("pop3://127.0.0.1:0", f"{PORT} '0'", id="pop3-zero"),
    pytest.param("ws://127.0.0.1:abc/echo", f"{PORT} 'abc'", id="ws-abc"),
    pytest.param("wss://chat.example.org:0/socket", f"{PORT} '0'", id="wss-zero"),
    pytest.param("ws://chat.example.org:65536/", f"{PORT} '65536'", id="ws-65536"),
    pytest.param("tcp://db.example.org:abc", f"{PORT} 'abc'", id="tcp-abc"),
    pytest.param("tls://db.example.org:0", f"{PORT} '0'", id="tls-zero"),
    pytest.param("tls://db.example.org:+993", f"{PORT} '+993'", id="tls-plus-sign"),
    pytest.param("http://example.org:abc", f"{PORT} 'abc'", id="http-abc"),
    pytest.param("https://example.org:0", f"{PORT} '0'", id="https-zero"),
    pytest.param("https://example.org:70000/", f"{PORT} '70000'", id="https-70000"),
    pytest.param(
        "'dns://example.org?resolver=192.0.2.53:0'",
        "the resolver's port must be 1-65535, got 0",
        id="dns-resolver-zero",
    ),
    pytest.param(
        "'dns://example.org?resolver=192.0.2.53:٥٣'",
        "expected a resolver such as 192.0.2.53:53, got '192.0.2.53:٥٣'",
        id="dns-resolver-arabic-digits",
    ),
    pytest.param(
        "dns://example.org:abc",
        "expected dns://NAME?type=A[&resolver=IP:PORT] (the resolver's port goes in",
        id="dns-abc-port-on-name",
    ),
    pytest.param("icmp://192.0.2.1:abc", "expected icmp://host (ICMP has no port)", id="icmp-abc"),
    pytest.param("rdap://example.org:abc", "expected rdap://DOMAIN", id="rdap-abc"),
    pytest.param(
        "'rdap://example.org?server=https://rdap.example:abc/'",
        "the RDAP server's port must be a number 1-65535, got 'abc'",
        id="rdap-server-abc",
    ),
    pytest.param(
        "'rdap://example.org?server=https://rdap.example:0/'",
        "the RDAP server's port must be a number 1-65535, got '0'",
        id="rdap-server-zero",
    ),
    pytest.param("heartbeat://backup:abc", "expected heartbeat://NAME", id="heartbeat-abc"),
]
#: A name a DNS query cannot carry is refused when the file is read, not when it runs.
BAD_DNS_NAMES = [
    pytest.param("dns://bad..name", "the DNS name 'bad..name' has an empty label", id="dots"),
    pytest.param(
        "dns://.example.org", "the DNS name '.example.org' has an empty label", id="leading-dot"
    ),
    pytest.param(
        "dns://" + "a" * 64 + ".org",
        "the DNS name's label '" + "a" * 64 + "' is longer than 63 characters",
        id="label-64",
    ),
    pytest.param(
        "dns://" + ".".join(["a" * 60] * 5),
        "the DNS name is longer than 253 characters (304)",
        id="name-304",
    ),
    pytest.param(
        "dns://ex!ample.org",
        "the DNS name may hold only letters, digits, hyphens, underscores and dots, got "
        "'ex!ample.org'",
        id="exclamation-mark",
    ),
    pytest.param("dns://a.*.example.org", "the DNS name may hold only", id="star-not-leftmost"),
    pytest.param(
        "dns://bad\ufffd.example",
        "the DNS name's label 'bad\ufffd' is not a valid internationalized label",
        id="not-idna",
    ),
    pytest.param(
        "dns://\u2474.example", "the DNS name may hold only", id="idna-maps-to-parenthesis"
    ),
]

NOT_SENT = "takes no #fragment (nothing of it would be sent), got"
#: A ``#fragment`` used to be dropped from these targets: two websites that differed by it only
#: (``#primary``, ``#replica``) were one task, silently. HTTP keeps it, as Argos does.
FRAGMENTS = [
    pytest.param(
        "tcp://db.example.org:5432#primary",
        f"a tcp:// target {NOT_SENT} 'tcp://db.example.org:5432#primary'",
        id="tcp",
    ),
    pytest.param("tcp://db.example.org:5432#", f"a tcp:// target {NOT_SENT}", id="tcp-empty"),
    pytest.param("tls://mail.example.org:993#x", f"a tls:// target {NOT_SENT}", id="tls"),
    pytest.param("smtp://mail.example.org#x", f"a smtp:// target {NOT_SENT}", id="smtp"),
    pytest.param("imap://mail.example.org:143#x", f"a imap:// target {NOT_SENT}", id="imap"),
    pytest.param("pop3://mail.example.org#x", f"a pop3:// target {NOT_SENT}", id="pop3"),
    pytest.param("'dns://example.org?type=MX#x'", f"a dns:// target {NOT_SENT}", id="dns"),
    pytest.param("icmp://gateway.example.org#x", f"a icmp:// target {NOT_SENT}", id="icmp"),
    pytest.param(
        "'rdap://example.fr?server=https://rdap.nic.fr/#x'",
        f"a rdap:// target {NOT_SENT}",
        id="rdap-server",
    ),
    pytest.param(
        "wss://chat.example.org/socket#room",
        "a wss:// target takes no #fragment (a WebSocket URL has none, RFC 6455; write a '#' "
        "of its path as %23), got 'wss://chat.example.org/socket#room'",
        id="wss",
    ),
    pytest.param("ws://chat.example.org/#x", "a ws:// target takes no #fragment", id="ws"),
    pytest.param(
        "heartbeat://backup#2",
        "a heartbeat's name cannot hold '#' (the URL would end its name there), got "
        "'heartbeat://backup#2'",
        id="heartbeat",
    ),
]


def _refused(tmp_path: Path, domain: str, checks: str) -> str:
    path = _write(tmp_path, domain, checks)
    with pytest.raises(config.ConfigError) as err:
        config.parse(path, {})
    problems = [str(p) for p in err.value.problems]
    assert len(problems) == 1, problems
    return problems[0].removeprefix(f"{path}:")


@pytest.mark.parametrize(("domain", "checks", "error"), REFUSED)
def test_refused_with_place(tmp_path, domain, checks, error):
    assert _refused(tmp_path, domain, checks).startswith(error)


@pytest.mark.parametrize(("domain", "error"), BAD_PORTS + BAD_DNS_NAMES)
def test_bad_port_or_dns_name_refused_with_place(tmp_path, domain, error):
    # The domain is refused before its checks are read: any check will do.
    problem = _refused(tmp_path, domain, "tcp-connect: true")
    assert problem.startswith(f"4:13: websites[0].domain: {error}"), problem


@pytest.mark.parametrize(("domain", "error"), FRAGMENTS)
def test_a_fragment_is_refused_beyond_http_with_place(tmp_path, domain, error):
    problem = _refused(tmp_path, domain, "tcp-connect: true")
    assert problem.startswith(f"4:13: websites[0].domain: {error}"), problem


def test_two_heartbeats_cannot_share_a_ping_url(tmp_path):
    key = "6f1c1bd2-5a43-4cb6-9d55-0a3f1f7e2b10"
    path = tmp_path / "c.yaml"
    path.write_text(
        "general:\n  frequency: 1m\nwebsites:\n"
        "  - domain: heartbeat://backup\n    checks:\n"
        f"      - heartbeat: {{uuid: {key}, period: 1d}}\n"
        "  - domain: heartbeat://report\n    checks:\n"
        f"      - heartbeat: {{uuid: {key}, period: 1h}}\n"
    )
    with pytest.raises(config.ConfigError) as err:
        config.parse(path, {})
    assert [str(p) for p in err.value.problems] == [
        f"{path}:9:7: websites[1].checks: uuid {key} is already the ping URL of websites[0].checks"
    ]


RDAP_SERVERS = [
    pytest.param(
        "http://[::1]:8080/",
        {6},
        "an IPv6 address: checked over IPv6 only",
        id="ipv6-server-over-ipv6-only",
    ),
    pytest.param(
        "http://192.0.2.1/",
        {4},
        "an IPv4 address: checked over IPv4 only",
        id="ipv4-server-over-ipv4-only",
    ),
    pytest.param("https://rdap.example/", {4}, None, id="named-server-over-ipv4"),
]


@pytest.mark.parametrize(("server", "versions", "warning"), RDAP_SERVERS)
def test_an_rdap_servers_address_decides_its_ip_version(tmp_path, server, versions, warning):
    """The agent connects to the server, not to the domain: an address there is asked over
    its own IP version (an IPv6 one over IPv4 was an agent error), as an address domain is."""
    cfg = config.parse(
        _write(tmp_path, f"'rdap://example.org?server={server}'", "domain-expiration: on-check"), {}
    )
    assert {t.ip_version for t in cfg.tasks.values()} == versions
    assert [p.message for p in cfg.warnings] == ([f"warning: {warning}"] if warning else [])


def test_an_rdap_server_address_of_a_version_turned_off_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "general:\n  frequency: 1m\n  ipv6: false\nwebsites:\n"
        "  - domain: 'rdap://example.org?server=http://[::1]/'\n"
        "    checks:\n      - domain-expiration: on-check\n"
    )
    with pytest.raises(config.ConfigError) as err:
        config.parse(path, {})
    assert [str(p).removeprefix(f"{path}:") for p in err.value.problems] == [
        "5:13: websites[0].domain: an IPv6 address, but ipv6 is off"
    ]
