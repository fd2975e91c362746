"""`tocsin dev` (what `make run` starts): judged tasks within a minute, a clean Ctrl-C, and a
second run that keeps the history."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from tests.devproc import (
    free_ports,
    get,
    start,
    stop,
    wait_gone,
    wait_host,
    wait_judged,
    wait_serving,
)


def test_dev_runs_everything_stops_cleanly_and_keeps_history(tmp_path: Path):
    data = tmp_path / "data"
    ports = free_ports()
    base = f"http://127.0.0.1:{ports['web']}"
    proc = start(data, ports)
    try:
        line = wait_serving(proc)
        assert base in line
        tasks = wait_judged(base, 60)
        by_path = {t["url"].rsplit("/", 1)[-1] + " " + t["check"]: t["severity"] for t in tasks}
        # The demo's address comes from the environment, and is shown all the same.
        assert f"http://127.0.0.1:{ports['demo']}/healthy" in {t["url"] for t in tasks}
        assert by_path["healthy status-is"] == "ok"
        assert by_path["broken status-is"] == "critical"
        assert by_path["wrong-body body-contains"] == "critical"
        # /slow answers in 1.5 s: over the demo's warning limit.
        assert by_path["slow response-time"] == "warning"
        # The demo's status page, with the incident `tocsin dev` posted on first start.
        with urllib.request.urlopen(f"{base}/status/demo", timeout=30) as resp:
            status = resp.read().decode()
        assert "Demo services" in status and "/broken answers 500" in status
        # Its own agent's host, with live figures, on the hosts page and in the API.
        hosts = wait_host(base, "local", 60)
        assert hosts["filesystems"] and 0 <= hosts["cpu_percent"] <= 100
        with urllib.request.urlopen(f"{base}/hosts", timeout=30) as resp:
            assert 'data-agent="local"' in resp.read().decode()
        first_seq = get(f"{base}/healthz")["projected_seq"]  # type: ignore[index]
    finally:
        stop(proc)
    assert wait_gone(data) == []

    proc = start(data, ports)
    try:
        wait_serving(proc)
        # The history is still there before anything new happens.
        assert get(f"{base}/healthz")["projected_seq"] >= first_seq  # type: ignore[index]
        tasks = get(f"{base}/api/tasks")
        # Every probed task has a result; a heartbeat has one only once something pings it;
        # host tasks (no results: their figures are on /hosts) keep their verdict.
        probed = [
            t
            for t in tasks  # type: ignore[union-attr]
            if t["check"] != "heartbeat" and not t["url"].startswith("host://")  # type: ignore[index]
        ]
        assert probed and all(t["last_checked_at"] for t in probed)
        hosts = [t for t in tasks if t["url"].startswith("host://")]  # type: ignore[union-attr, index]
        assert all(t["severity"] != "pending" for t in hosts)
    finally:
        stop(proc)
    assert wait_gone(data) == []
