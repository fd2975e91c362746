"""The configuration in force is the log's: ``tocsin config apply`` is run by the scheduler,
and restarting every service (the scheduler still pointed at its old file) reverts nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from configuration import config as configuration
from tests.faults.harness import ROOT, Services, config_body, count
from tests.helpers import DemoTarget, wait_for

PATHS = ["p0", "p1"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


async def test_config_apply_is_run_and_survives_restarting_everything(
    nats_server, database_url: str, demo_target: DemoTarget, tmp_path: Path
):
    for p in [*PATHS, "added"]:
        demo_target.set(p, status=200, body="ok")
    old = tmp_path / "tocsin.yaml"
    old.write_text(config_body(demo_target.url, PATHS))
    new = tmp_path / "new.yaml"
    new.write_text(config_body(demo_target.url, [*PATHS, "added"]))
    added = {t.id for t in configuration.parse(str(new)).tasks.values() if "/added" in t.url}
    assert added
    (tmp_path / "logs").mkdir()
    svc = Services(nats_server.url, database_url, old, tmp_path / "logs")
    try:
        procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]
        await wait_for(
            lambda: count(database_url, "SELECT count(*) FROM results"), 60, what="results"
        )
        done = _cli("config", "apply", str(new), "--nats-url", nats_server.url)
        assert done.returncode == 0, done.stderr
        assert "2 added" in done.stdout, done.stdout

        judged = "SELECT count(*) FROM tasks WHERE id = ANY($1::text[]) AND severity = 'ok'"
        await wait_for(
            lambda: _all(count(database_url, judged, list(added)), len(added)),
            30,
            what="the applied tasks judged",
        )

        # Restart every service; the scheduler still has the old file.
        for p in procs:
            await p.stop()
        restarted = time.time()
        procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]
        fresh = (
            "SELECT count(DISTINCT task_id) FROM results WHERE task_id = ANY($1::text[]) "
            "AND checked_at > to_timestamp($2)"
        )
        await wait_for(
            lambda: _all(count(database_url, fresh, list(added), restarted), len(added)),
            30,
            what="the applied tasks still checked after a restart",
        )
        removed = "SELECT count(*) FROM tasks WHERE removed_at IS NOT NULL"
        assert await count(database_url, removed) == 0
        shown = _cli("config", "show", "--nats-url", nats_server.url)
        assert shown.returncode == 0, shown.stderr
        assert all(tid in shown.stdout for tid in added), shown.stdout
        assert all(p.alive for p in procs)
    finally:
        await svc.close()


async def _all(n, want: int) -> bool:  # type: ignore[no-untyped-def]
    return await n == want
