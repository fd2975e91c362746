"""The embedded PostgreSQL of ``tocsin dev`` wants a password, generated and kept in the
data directory with mode 0600: no other local account can read the read models or the
web's cookie secret."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncpg
import pytest

from runtime.embedded import PostgresServer


async def _refused_without_password(server: PostgresServer) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/tocsin")


async def test_embedded_postgres_needs_its_generated_password(tmp_path: Path):
    server = PostgresServer(tmp_path / "pg").start()
    try:
        mode = stat.S_IMODE(server.password_file.stat().st_mode)
        assert mode == 0o600 and len(server.password) >= 20
        await _refused_without_password(server)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://postgres:guess@127.0.0.1:{server.port}/tocsin")
        conn = await asyncpg.connect(server.url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        hba = (server.pgdata / "pg_hba.conf").read_text()
        assert not any(
            line.split()[-1] == "trust"
            for line in hba.splitlines()
            if line.strip() and not line.startswith("#")
        )
    finally:
        server.stop()


async def test_a_trusting_cluster_of_an_older_version_gets_a_password(tmp_path: Path):
    server = PostgresServer(tmp_path / "pg").start()
    server.stop()
    # What older versions left: trust for everyone, no password file.
    hba = server.pgdata / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    server.password_file.unlink()
    server = PostgresServer(tmp_path / "pg", port=server.port).start()
    try:
        await _refused_without_password(server)
        conn = await asyncpg.connect(server.url)
        await conn.close()
    finally:
        server.stop()
