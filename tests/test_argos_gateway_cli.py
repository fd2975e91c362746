"""``tocsin argos`` as an operator starts it: where it listens (``--host``, as the migration
guide tells remote agents), a file without tokens warned of, tokens read again on SIGHUP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import nats

from events import streams
from runtime.embedded import free_port
from tests.helpers import site_config, wait_for, write_config

DOC = Path(__file__).resolve().parent.parent / "docs" / "migrating-from-argos.md"
TOKEN = "new-agent-token"
#: Another loopback address than 127.0.0.1: listening there is ``--host`` at work.
HOST = "127.0.0.2"


def _config(path: Path, tokens: str) -> Path:
    body = site_config("http://127.0.0.1:9", {"a": ["status-is: 200"]}, "1m", "5s")
    return write_config(path, body + f"service:\n  secrets:{tokens}\n")


async def test_host_warning_and_tokens_read_again_on_sighup(nats_server, tmp_path: Path) -> None:
    config = _config(tmp_path / "argos.yaml", "")  # as Argos's own example: no token
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), ["default"])
    await nc.close()
    port = free_port()
    gateway = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "services.cli", "argos", "--config", str(config)),
        *("--nats-url", nats_server.url, "--host", HOST, "--port", str(port)),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", headers=auth) as c:

            async def status() -> int | None:
                try:
                    return (await c.get("/api/tasks")).status_code
                except httpx.TransportError:
                    return None

            await wait_for(lambda: _is(status, 401), 30, what=f"the gateway on {HOST}")
            with_token = _config(tmp_path / "argos.yaml", f" [{TOKEN}]")
            assert with_token == config
            gateway.send_signal(signal.SIGHUP)
            await wait_for(lambda: _is(status, 200), 30, what="the new token taken on SIGHUP")
        async with httpx.AsyncClient() as other:
            try:
                await other.get(f"http://127.0.0.1:{port}/api/tasks", headers=auth)
                raise AssertionError(f"listening on 127.0.0.1 too, not on {HOST} only")
            except httpx.ConnectError:
                pass
    finally:
        gateway.terminate()
        _, err = await asyncio.wait_for(gateway.communicate(), 20)
    said = err.decode()
    assert "no service.secrets in the configuration" in said, said


async def _is(status, expected: int) -> bool:
    return await status() == expected


def test_the_guide_starts_the_gateway_where_remote_agents_reach_it() -> None:
    """The guide points agents on other machines at tocsin.example.org: the command it gives
    must listen beyond the loopback (``--host``; 127.0.0.1 by default)."""
    text = DOC.read_text()
    start = re.search(r"^tocsin argos .*$", text, re.M)
    assert start is not None and "http://tocsin.example.org:8300" in text
    assert re.search(r"--host (0\.0\.0\.0|::)", start.group(0)), start.group(0)
