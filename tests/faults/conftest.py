"""Fixtures of the fault tests: the services of a test as processes, stopped at its end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.harness import Services, config_body
from tests.helpers import DemoTarget

#: Paths of the demo target the fault tests check: each answers 200 "ok".
PATHS = [f"p{i}" for i in range(40)]


@pytest.fixture
async def target(demo_target: DemoTarget) -> DemoTarget:
    for p in PATHS:
        demo_target.set(p, status=200, body="ok")
    return demo_target


@pytest.fixture
async def svc(
    nats_server, database_url: str, target: DemoTarget, tmp_path: Path
) -> AsyncIterator[Services]:
    config = tmp_path / "tocsin.yaml"
    config.write_text(config_body(target.url, PATHS))
    logs = tmp_path / "logs"
    logs.mkdir()
    services = Services(nats_server.url, database_url, config, logs)
    yield services
    await services.close()
