"""What ``bus.connect``'s client says of its connection: a lost link is a warning, a client
closed on purpose (every CLI command's normal end) says nothing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from runtime import bus
from runtime.embedded import NatsServer
from tests.helpers import wait_for
from tests.security_support import start_secured


async def test_a_client_closed_on_purpose_says_nothing_of_a_disconnection(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.bus")
    nc = await bus.connect(nats_server.url, "cli")
    await bus.close(nc)
    assert "nats disconnected" not in caplog.text


async def test_a_lost_server_is_a_warning(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.bus")
    nc = await bus.connect(nats_server.url, "agent")
    try:
        nats_server.stop()
        await wait_for(lambda: _said(caplog, "nats disconnected"), what="the warning")
    finally:
        await nc.close()


async def _said(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return text in caplog.text


async def test_refused_credentials_are_said_once_and_clearly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web without web.creds on a secured bus: nats-py retried each second for ever, "nats
    error" each time; the log now says first that NATS refused the credentials, then one line
    per attempt, the attempts spaced by the reconnects' backoff."""
    caplog.set_level(logging.INFO, logger="tocsin.bus")
    monkeypatch.delenv("TOCSIN_NATS_CREDS", raising=False)
    secured = start_secured(tmp_path, {})
    server_log = tmp_path / "nats" / "nats-server.log"
    connecting = asyncio.create_task(bus.connect(secured.url, "web"))
    try:

        async def refused_thrice() -> bool:
            return server_log.read_text().count("authentication error") >= 3

        await wait_for(refused_thrice, what="three refused connections")
        said = [r.getMessage() for r in caplog.records if r.name == "tocsin.bus"]
        assert said[0] == bus.REFUSED, caplog.text
        assert set(said[1:]) <= {"cannot reach NATS yet"}, caplog.text
    finally:
        connecting.cancel()
        secured.server.stop()
