"""TLS between agents and NATS with trustme certificates, authorization on, and request
secrets sealed end to end: the agent sends the Authorization header, the log never shows it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from nats.js.errors import NotFoundError

from events import codec, streams, subjects
from events.types import CheckRequested, TaskJudged
from runtime import bus
from runtime.embedded import free_port
from security.client import ClientSecurity
from security.serverconf import Tls
from services.agent.service import Agent, AgentOptions
from services.scheduler.service import Scheduler, SchedulerOptions
from tests.helpers import wait_for, write_config
from tests.security_support import SecuredBus, connect, start_secured

SECRET = "Bearer s3cret-t0ken"


@pytest.fixture
def ca(tmp_path: Path) -> trustme.CA:
    return trustme.CA()


def _server_tls(ca: trustme.CA, tmp: Path, verify_clients: bool = False) -> Tls:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "server.key"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    return Tls(
        tmp / "server.pem",
        tmp / "server.key",
        ca=tmp / "ca.pem" if verify_clients else None,
        verify_clients=verify_clients,
    )


@pytest.fixture
async def tls_bus(tmp_path: Path, ca: trustme.CA) -> AsyncIterator[SecuredBus]:
    sb = start_secured(tmp_path, {"a1": "eu"}, tls=_server_tls(ca, tmp_path))
    yield sb
    sb.server.stop()


@pytest.fixture
async def guarded_site() -> AsyncIterator[str]:
    """A site that answers 200 only to the right Authorization header."""

    async def page(request: web.Request) -> web.Response:
        ok = request.headers.get("Authorization") == SECRET
        return web.Response(status=200 if ok else 401, text="ok" if ok else "who are you?")

    app = web.Application()
    app.router.add_get("/private", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


CONFIG = """
general:
  frequency: 1s
  ipv6: false
  timeout: 3s
  locations: [eu]
websites:
  - domain: {url}
    paths:
      - path: /private
        request_data:
          headers:
            Authorization: "{secret}"
        checks:
          - status-is: 200
"""


async def test_agent_over_tls_opens_sealed_secrets_the_log_never_shows(
    tls_bus: SecuredBus, guarded_site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = tls_bus
    ca_file = str(tmp_path / "ca.pem")
    # The scheduler joins with its own identity, from the environment as in production.
    monkeypatch.setenv("TOCSIN_NATS_CREDS", str(sb.store.creds_path("scheduler")))
    monkeypatch.setenv("TOCSIN_NATS_TLS_CA", ca_file)
    config = write_config(tmp_path / "c.yaml", CONFIG.format(url=guarded_site, secret=SECRET))
    scheduler = Scheduler(SchedulerOptions(sb.url, str(config), security_dir=str(sb.store.dir)))
    agent = Agent(
        AgentOptions(
            sb.url, "a1", location="eu", heartbeat=0.5, security=sb.security("a1", tls_ca=ca_file)
        )
    )
    tasks = [asyncio.create_task(scheduler.run()), asyncio.create_task(agent.run())]
    admin = await connect(sb.url, sb.security("admin", tls_ca=ca_file))
    try:

        async def judged_ok() -> bool:
            with contextlib.suppress(NotFoundError):  # the scheduler has not made the stream yet
                async for msg in bus.replay(admin.jetstream(), subjects.JUDGED_ALL):
                    ev = codec.decode(msg.data, msg.subject)
                    if isinstance(ev, TaskJudged) and ev.judgements[0].severity == "ok":
                        return True
            return False

        await wait_for(judged_ok, 30, what="the guarded page judged ok (header delivered)")
        log = [m async for m in bus.replay(admin.jetstream(), subjects.ALL)]
        requests = [
            codec.decode(m.data, m.subject)
            for m in log
            if m.subject.startswith("tocsin.check.requested.")
        ]
        assert requests and all(
            isinstance(r, CheckRequested) and r.sealed and r.request_data is None for r in requests
        )
        assert not [m.subject for m in log if b"s3cret" in m.data]
    finally:
        scheduler.stop()
        agent.stop()
        await asyncio.gather(*tasks)
        await admin.close()
    # The server applies acks asynchronously: the last ones may still be on their way. A
    # request held until ack_wait (30 s) would still fail here.
    await wait_for(
        lambda: _consumer_drained(sb, ca_file), 10, what="every request the agent took acked"
    )


async def _consumer_drained(sb: SecuredBus, ca_file: str) -> bool:
    return await _consumer_pending(sb, ca_file) == 0


async def _consumer_pending(sb: SecuredBus, ca_file: str) -> int:
    admin = await connect(sb.url, sb.security("admin", tls_ca=ca_file))
    try:
        info = await admin.jetstream().consumer_info(streams.WORK, "agents-eu")
        return info.num_ack_pending
    finally:
        await admin.close()


async def test_agent_refuses_a_server_it_cannot_verify(tls_bus: SecuredBus, tmp_path: Path) -> None:
    other = trustme.CA()
    other.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    with pytest.raises(Exception, match=r"(?i)certificate verify failed"):
        await connect(tls_bus.url, tls_bus.security("a1", tls_ca=str(tmp_path / "other-ca.pem")))
    # And the system trust store does not know our private CA either.
    with pytest.raises(Exception, match=r"(?i)certificate verify failed"):
        await connect(tls_bus.url, ClientSecurity(creds=str(tls_bus.store.creds_path("a1"))))


async def test_client_certificates_when_the_server_requires_them(
    tmp_path: Path, ca: trustme.CA
) -> None:
    sb = start_secured(tmp_path, {"a1": "eu"}, tls=_server_tls(ca, tmp_path, verify_clients=True))
    try:
        client = ca.issue_cert("agent-a1.example")
        client.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "a1.pem"))
        client.private_key_pem.write_to_path(str(tmp_path / "a1.key"))
        ca_file = str(tmp_path / "ca.pem")
        with pytest.raises(Exception):  # noqa: B017 - handshake refused without a certificate
            await connect(sb.url, sb.security("a1", tls_ca=ca_file))
        nc = await connect(
            sb.url,
            sb.security(
                "a1",
                tls_ca=ca_file,
                tls_cert=str(tmp_path / "a1.pem"),
                tls_key=str(tmp_path / "a1.key"),
            ),
        )
        assert nc.is_connected
        await nc.close()
    finally:
        sb.server.stop()
