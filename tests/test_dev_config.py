"""`tocsin dev --config FILE` runs FILE, whatever the data directory ran before: applied at
start as `tocsin config apply` would (an invalid file is refused before anything starts);
`tocsin dev` alone then keeps it, and says so: the demo only fills an empty log."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

from tests.devproc import free_ports, get, start, stop, wait_gone, wait_judged, wait_serving
from tests.helpers import write_config
from tests.test_config import HEAD

MINE = """
general:
  frequency: 10s
  unauthenticated_access: all
  alerts: {ok: [local], warning: [local], critical: [local], unknown: [local]}
websites:
  - domain: ${TOCSIN_DEMO_URL}
    paths:
      - path: /healthy
        checks:
          - status-is: 200
          - body-contains: fine
status_pages:
  - slug: mine
    title: Mine
    groups:
      - name: Site
        components:
          - name: Home
            website: ${TOCSIN_DEMO_URL}
"""
BAD = HEAD + "        checks:\n          - statuss-is: 200\n"


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _checked_after(base: str, since: float, timeout: float = 60) -> list[dict]:
    """/api/tasks once each of its tasks has a result of this run (the scheduler took its
    configuration and the projector folded everything before those results)."""
    deadline = time.monotonic() + timeout
    tasks: list[dict] = []
    while time.monotonic() < deadline:
        tasks = get(f"{base}/api/tasks")  # type: ignore[assignment]
        stamps = [t["last_checked_at"] for t in tasks]
        if tasks and all(s and _epoch(s) > since for s in stamps):
            return tasks
        time.sleep(0.5)
    raise AssertionError(f"no results since the start in {timeout}s: {tasks}")


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def test_dev_runs_the_config_given_over_the_demo_and_keeps_it_without_one(tmp_path: Path):
    data = tmp_path / "data"
    mine = write_config(tmp_path / "mine.yaml", MINE)
    ports = free_ports()
    base = f"http://127.0.0.1:{ports['web']}"
    proc = start(data, ports)
    try:
        wait_serving(proc)
        assert len(wait_judged(base)) > 2  # the demo's
    finally:
        stop(proc)

    proc = start(data, ports, "--config", str(mine))
    try:
        said = wait_serving(proc)
        # What `tocsin config apply` says: the demo's other tasks go.
        assert "tocsin dev: applied " in said and "removed" in said, said
        started = time.time()
        tasks = _checked_after(base, started)
        assert sorted((t["url"].rsplit("/", 1)[-1], t["check"]) for t in tasks) == [
            ("healthy", "body-contains"),
            ("healthy", "status-is"),
        ]
        assert _status(f"{base}/status/mine") == 200
        assert _status(f"{base}/status/demo") == 404
    finally:
        stop(proc)

    # Without --config: what was applied stays, and the user is told why it is not the demo.
    proc = start(data, ports)
    try:
        said = wait_serving(proc)
        assert str(mine) in said and "not the demo" in said, said
        tasks = _checked_after(base, time.time())
        assert {t["url"].rsplit("/", 1)[-1] for t in tasks} == {"healthy"}
        assert _status(f"{base}/status/mine") == 200
    finally:
        stop(proc)
    assert wait_gone(data) == []


def test_dev_refuses_an_invalid_config_before_starting_anything(tmp_path: Path):
    data = tmp_path / "data"
    bad = write_config(tmp_path / "bad.yaml", BAD)
    proc = start(data, free_ports(), "--config", str(bad))
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            stop(proc)
    assert proc.returncode == 2, out
    assert f"{bad}:8:13: websites[0].paths[0].checks[0].statuss-is: unknown check" in out, out
    assert not (data / "nats").exists() and not (data / "postgres").exists()
    assert wait_gone(data) == []
