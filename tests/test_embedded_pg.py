"""The embedded PostgreSQL of ``tocsin dev`` wants a password, generated and kept in the
data directory with mode 0600: no other local account can read the read models or the
web's cookie secret."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
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


def test_starting_says_nothing_of_a_runtime_directory_it_never_uses(tmp_path: Path) -> None:
    """A shell without XDG_RUNTIME_DIR (root in a container, CI, cron): the wheel's import
    made platformdirs warn about it on `make run`'s first lines, a path and a warning class
    for a directory Tocsin never uses."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    code = (
        "import sys; from runtime.embedded import PostgresServer; "
        "PostgresServer(__import__('pathlib').Path(sys.argv[1])).start().stop()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "pg")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr


async def test_a_data_directory_of_a_long_path_starts(tmp_path: Path) -> None:
    """A Unix socket's path is bounded (107 bytes on Linux): PostgreSQL put its socket in the
    data directory and exited with code 1 when that path was long (`tocsin dev --data-dir` in
    a deep directory). It listens on TCP only, which is all Tocsin uses."""
    server = PostgresServer(tmp_path / ("deep-" * 20) / "pg").start()
    try:
        conn = await asyncpg.connect(server.url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        server.stop()
