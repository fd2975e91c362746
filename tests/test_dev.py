"""`tocsin dev` (what `make run` starts): judged tasks within a minute, a clean Ctrl-C, and a
second run that keeps the history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from services.common.embedded import free_port


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _start(data: Path, ports: dict[str, int]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "dev",
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


def _wait_serving(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    seen = []
    while True:
        line = proc.stdout.readline()
        assert line, f"tocsin dev exited before serving: {''.join(seen)}"
        seen.append(line)
        if "Tocsin is running" in line:
            return line


def _wait_judged(base: str, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    tasks: list[dict] = []
    while time.monotonic() < deadline:
        try:
            tasks = _get(f"{base}/api/tasks")  # type: ignore[assignment]
        except OSError:
            tasks = []
        if tasks and all(t["severity"] in ("ok", "critical") for t in tasks):
            return tasks
        time.sleep(1)
    raise AssertionError(f"tasks not judged in {timeout}s: {tasks}")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def _leftovers(data: Path) -> list[str]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(data) in cmd:
            found.append(cmd)
    return found


def test_dev_runs_everything_stops_cleanly_and_keeps_history(tmp_path: Path):
    data = tmp_path / "data"
    ports = {k: free_port() for k in ("web", "nats", "pg", "demo")}
    base = f"http://127.0.0.1:{ports['web']}"
    proc = _start(data, ports)
    try:
        line = _wait_serving(proc)
        assert base in line
        tasks = _wait_judged(base, 60)
        by_path = {t["url"].rsplit("/", 1)[1] + " " + t["check"]: t["severity"] for t in tasks}
        assert by_path["healthy status-is"] == "ok"
        assert by_path["broken status-is"] == "critical"
        assert by_path["wrong-body body-contains"] == "critical"
        first_seq = _get(f"{base}/healthz")["projected_seq"]  # type: ignore[index]
    finally:
        _stop(proc)
    time.sleep(0.5)
    assert _leftovers(data) == []

    proc = _start(data, ports)
    try:
        _wait_serving(proc)
        # The history is still there before anything new happens.
        assert _get(f"{base}/healthz")["projected_seq"] >= first_seq  # type: ignore[index]
        tasks = _get(f"{base}/api/tasks")
        assert all(t["last_checked_at"] for t in tasks)  # type: ignore[union-attr]
    finally:
        _stop(proc)
    assert _leftovers(data) == []
