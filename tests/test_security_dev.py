"""`tocsin dev --secure`: the whole stack on an embedded NATS with authorization on, each
service with its own identity, tasks judged (the demo heartbeat through a ping the web
publishes with its identity), and an anonymous client refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest

from tests.devproc import (
    free_ports,
    ping_demo_heartbeat,
    start,
    stop,
    wait_judged,
    wait_serving,
)


def test_dev_secure_runs_with_authorization(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ports = free_ports()
    proc = start(data, ports, "--secure")
    base = f"http://127.0.0.1:{ports['web']}"
    try:
        wait_serving(proc)
        # Pinged rather than left to turn late 30 s after start (tests/test_dev.py waits
        # for that): the ping's event is published under the web's own identity.
        ping_demo_heartbeat(base)
        tasks = wait_judged(base, 90)
        sev = {t["url"].rsplit("/", 1)[-1] + " " + t["check"]: t["severity"] for t in tasks}
        assert sev["healthy status-is"] == "ok" and sev["broken status-is"] == "critical"
        assert sev["demo-job heartbeat"] == "ok"
        assert (data / "security" / "creds" / "local.creds").exists()
        with pytest.raises(Exception):  # noqa: B017 - no credentials, no entry
            asyncio.run(
                nats.connect(
                    f"nats://127.0.0.1:{ports['nats']}", allow_reconnect=False, connect_timeout=3
                )
            )
    finally:
        stop(proc)
