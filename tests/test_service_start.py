"""Services started while NATS is away, refuses their credentials or cannot be verified: they
wait with the reconnects' backoff, say why once per attempt, and end at once on SIGTERM (rc 0)
at any point of their start; a one-shot command says why within its few seconds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from runtime.embedded import NatsServer, free_port
from security.serverconf import Tls
from tests.clirun import tocsin
from tests.faults.harness import Service, Services, config_body
from tests.helpers import wait_for
from tests.security_support import SecuredBus, start_secured

#: A hang guard, not a speed: a stopped service that needs SIGKILL never ends by itself.
ENDED = 30


async def _said(svc: Service, text: str, times: int = 1) -> bool:
    return svc.output().count(text) >= times


def _attempts(svc: Service) -> list[str]:
    return [line for line in svc.output().splitlines() if "cannot reach NATS yet" in line]


async def _waits_then_stops(svc: Service, why: str) -> None:
    """Three failed attempts, each saying ``why``, the pause growing; SIGTERM ends it."""
    await wait_for(
        lambda: _said(svc, "cannot reach NATS yet", 3), 60, what=f"three attempts\n{svc.output()}"
    )
    assert await svc.stop(ENDED) == 0, svc.output()
    lines = _attempts(svc)
    assert all(why in line.lower() for line in lines), lines
    pauses = [float(m.group(1)) for line in lines if (m := re.search(r"retry_in=([\d.]+)", line))]
    assert len(pauses) == len(lines) and max(pauses[2:]) > min(pauses[:1]), lines
    assert "Traceback" not in svc.output()


@pytest.mark.parametrize("which", ["scheduler", "agent", "projector", "notifier"])
async def test_a_service_waits_for_nats_and_stops_on_sigterm(
    which: str, database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text(config_body("http://127.0.0.1:9", ["up"]))
    svc = Services(f"nats://127.0.0.1:{free_port()}", database_url, config, tmp_path)
    try:
        if which == "notifier":
            started = svc._start(
                "notifier",
                [
                    "notifier",
                    "--nats-url",
                    svc.nats_url,
                    "--database-url",
                    database_url,
                    "--config",
                    str(config),
                ],
            )
        else:
            started = svc.agent("a1") if which == "agent" else getattr(svc, which)()
        await _waits_then_stops(started, "connection refused")
    finally:
        await svc.close()


async def test_an_agent_refused_its_credentials_says_so_and_stops(tmp_path: Path) -> None:
    sb = start_secured(tmp_path, {"a1": "eu"})
    try:
        agent = Service(
            ["agent", "--nats-url", sb.url, "--name", "a1", "--location", "eu"],
            tmp_path / "agent.log",
        )
        await _waits_then_stops(agent, "authorization")
    finally:
        sb.server.stop()


@pytest.fixture
def untrusted(tmp_path: Path) -> Iterator[SecuredBus]:
    """A TLS server whose certificate no client here trusts (no --tls-ca)."""
    cert = trustme.CA().issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    sb = start_secured(
        tmp_path, {"a1": "eu"}, tls=Tls(tmp_path / "server.pem", tmp_path / "server.key")
    )
    yield sb
    sb.server.stop()


async def test_an_agent_that_cannot_verify_the_server_says_so_and_stops(
    untrusted: SecuredBus, tmp_path: Path
) -> None:
    agent = Service(
        ["agent", "--nats-url", untrusted.url, "--name", "a1", "--location", "eu"],
        tmp_path / "agent.log",
        env={"TOCSIN_NATS_CREDS": str(untrusted.store.creds_path("a1"))},
    )
    await _waits_then_stops(agent, "certificate")


def test_a_command_that_cannot_verify_the_server_says_so(
    untrusted: SecuredBus, tmp_path: Path
) -> None:
    # Run elsewhere than tmp_path: its security/ directory would stand for the package.
    (tmp_path / "cwd").mkdir()
    done = tocsin(
        ["config", "history", "--nats-url", untrusted.url],
        tmp_path / "cwd",
        TOCSIN_NATS_CREDS=str(untrusted.store.creds_path("admin")),
    )
    assert done.returncode == 1 and "certificate" in done.stderr.lower(), done.stderr
    assert "Traceback" not in done.stderr


async def test_an_agent_stopped_while_nats_is_away_ends_cleanly(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    agent = Service(["agent", "--nats-url", nats_server.url, "--name", "a1"], tmp_path / "a.log")
    try:
        # Connected: it waits for the scheduler's streams, and says so.
        await wait_for(
            lambda: _said(agent, "consumer not there yet"), 60, what=f"connected\n{agent.output()}"
        )
        nats_server.stop()
        await wait_for(
            lambda: _said(agent, "nats disconnected"), 60, what=f"lost\n{agent.output()}"
        )
        assert await agent.stop(ENDED) == 0, agent.output()
        assert "Traceback" not in agent.output()
    finally:
        if agent.alive:
            agent.kill()


def test_a_command_over_tls_says_nothing_of_asyncio(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = Tls(tmp_path / "server.pem", tmp_path / "server.key")
    sb = start_secured(tmp_path, {"a1": "eu"}, tls=tls)
    (tmp_path / "cwd").mkdir()
    try:
        done = tocsin(
            ["config", "history", "--nats-url", sb.url],
            tmp_path / "cwd",
            TOCSIN_NATS_CREDS=str(sb.store.creds_path("admin")),
            TOCSIN_NATS_TLS_CA=str(tmp_path / "ca.pem"),
        )
    finally:
        sb.server.stop()
    assert "eof_received" not in done.stderr, done.stderr


def test_a_backup_refused_by_authorization_says_so(tmp_path: Path) -> None:
    sb = start_secured(tmp_path, {"a1": "eu"})
    (tmp_path / "cwd").mkdir()
    try:
        done = tocsin(
            ["log", "backup", "b", "--nats-url", sb.url],
            tmp_path / "cwd",
            TOCSIN_NATS_CREDS=str(sb.store.creds_path("a1")),
        )
    finally:
        sb.server.stop()
    assert done.returncode == 1 and "permissions violation" in done.stderr.lower(), done.stderr
