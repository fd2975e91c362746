"""`tocsin check --json` runs every kind beyond HTTP (examples/monitors.yaml) against real local
servers: aiosmtpd and small IMAP/POP3 servers with STARTTLS, a DNS server, a WebSocket server,
an RDAP registry, ICMP to loopback. With examples/argos.yaml (tests/test_oneshot.py) that is
every kind of the catalogue."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import trustme

from checks import CATALOGUE
from tests.dnsserver import DNSServer
from tests.mailservers import StreamServer, imap_handler, pop3_handler, smtp_server
from tests.rdapserver import RDAPServer
from tests.wsserver import WSServer

EXAMPLE = Path(__file__).parent.parent / "examples" / "monitors.yaml"
ARGOS = {"http", "https", "tcp", "tls"}


def test_every_kind_beyond_http_runs_ok(tmp_path: Path):
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    with ExitStack() as stack:
        smtp = smtp_server(tls)
        stack.callback(smtp.stop)
        imap = stack.enter_context(StreamServer(imap_handler(tls, True)))
        pop3 = stack.enter_context(StreamServer(pop3_handler(tls, True)))
        dns = stack.enter_context(DNSServer())
        ws = stack.enter_context(WSServer(tls))
        rdap = stack.enter_context(RDAPServer())
        env = {
            **os.environ,
            "SSL_CERT_FILE": str(ca_file),
            "SMTP_HOST": f"127.0.0.1:{smtp.port}",
            "IMAP_HOST": f"127.0.0.1:{imap.port}",
            "POP3_HOST": f"127.0.0.1:{pop3.port}",
            "DNS_RESOLVER": dns.address,
            "WS_HOST": f"127.0.0.1:{ws.port}",
            "WSS_HOST": f"127.0.0.1:{ws.tls_port}",
            "RDAP_SERVER": f"{rdap.url}/rdap/",
        }
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "check", "--config", str(EXAMPLE), "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stdout + done.stderr
    assert {(r["status"], r["severity"]) for r in rows} == {("success", "ok")}, rows
    beyond = {k for k, m in CATALOGUE.items() if not m.SCHEMES & ARGOS}
    pushed = {k for k, m in CATALOGUE.items() if getattr(m, "PUSH", False)}
    assert {r["check"] for r in rows} >= beyond - pushed
    by_url = {r["url"].split("://")[0]: r for r in rows}
    assert {"smtp", "imap", "pop3", "dns", "ws", "wss", "icmp", "rdap"} <= set(by_url)
    # What was observed comes along, for the result page and scripts.
    dns_row = next(r for r in rows if r["check"] == "dns-answer-contains")
    assert dns_row["facts"]["answers"] == ["192.0.2.10", "192.0.2.11"]
    assert by_url["icmp"]["facts"]["received"] == 3
    assert by_url["rdap"]["facts"]["registrar"] == "Test Registrar SA"
    assert by_url["smtp"]["facts"]["certificate"]["names"] == ["127.0.0.1"]
