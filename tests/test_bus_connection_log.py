"""What ``bus.connect``'s client says of its connection: a lost link is a warning, a client
closed on purpose (every CLI command's normal end) says nothing."""

from __future__ import annotations

import logging

import pytest

from runtime import bus
from runtime.embedded import NatsServer
from tests.helpers import wait_for


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
