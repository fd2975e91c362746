"""`tocsin dev --secure`: the whole stack on an embedded NATS with authorization on, each
service with its own identity, tasks judged, and an anonymous client refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nats
import pytest

from services.common.embedded import free_port


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_dev_secure_runs_with_authorization(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ports = {k: free_port() for k in ("web", "nats", "pg", "demo")}
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "dev",
            "--secure",
            "--data-dir",
            str(data),
            "--port",
            str(ports["web"]),
            "--nats-port",
            str(ports["nats"]),
            "--postgres-port",
            str(ports["pg"]),
            "--demo-port",
            str(ports["demo"]),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{ports['web']}"
    try:
        assert proc.stdout is not None
        while "Tocsin is running" not in (line := proc.stdout.readline()):
            assert line, "tocsin dev --secure exited before serving"
        deadline = time.monotonic() + 90
        tasks: list[dict] = []  # type: ignore[type-arg]
        while time.monotonic() < deadline:
            tasks = _get(f"{base}/api/tasks")  # type: ignore[assignment]
            if tasks and all(t["severity"] in ("ok", "critical") for t in tasks):
                break
            time.sleep(1)
        sev = {t["url"].rsplit("/", 1)[1] + " " + t["check"]: t["severity"] for t in tasks}
        assert sev["healthy status-is"] == "ok" and sev["broken status-is"] == "critical"
        assert (data / "security" / "creds" / "local.creds").exists()
        with pytest.raises(Exception):  # noqa: B017 - no credentials, no entry
            asyncio.run(
                nats.connect(
                    f"nats://127.0.0.1:{ports['nats']}", allow_reconnect=False, connect_timeout=3
                )
            )
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
