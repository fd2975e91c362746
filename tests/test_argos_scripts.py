"""The scripts Argos users run keep working: ``tocsin nagios`` prints what ``argos server
nagios`` prints and exits as it does, and ``/api/severities`` and ``/api/stats`` answer
with Argos's shapes. Argos 0.10.3 itself is asked about the same state (its own CLI and
its own app, in .venv-argos) and the answers compared."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.web.cli import nagios_report
from services.web.settings import WebSettings
from tests.argos_support import argos_bin
from tests.web_fixtures import Seeder, task_def, web_server

TASKS = 6


def _argos_file(tmp_path: Path) -> Path:
    paths = "".join(f'      - {{path: "/p{i}", checks: [status-is: 200]}}\n' for i in range(TASKS))
    path = tmp_path / "argos.yaml"
    path.write_text(
        f"""\
general:
  db: {{url: "sqlite:///{tmp_path}/argos.db"}}
  cookie_secret: "s3cret"
  frequency: "5m"
  ipv6: false
  unauthenticated_access: all
  alerts: {{ok: [local], warning: [local], critical: [local], unknown: [local],
           no_agent: [local]}}
service: {{secrets: ["tok"]}}
ssl: {{thresholds: [{{"1d": critical}}]}}
recurring_tasks: {{max_results_age: "1d", max_lock_seconds: 100, time_without_agent: 5}}
websites:
  - domain: "https://example.org"
    paths:
{paths}"""
    )
    return path


def argos_state(tmp_path: Path, severities: list[str]) -> tuple[int, str, dict[str, Any]]:
    """Argos's nagios exit code and line, and its API answers, with these task severities
    (the other tasks keep Argos's initial severity, unknown)."""
    config = _argos_file(tmp_path)
    here = Path(__file__).parent / "argos" / "argos_severities.py"
    api = subprocess.run(
        [str(argos_bin() / "python"), str(here), str(config), *severities],
        capture_output=True,
        text=True,
        check=True,
    )
    nagios = subprocess.run(
        [str(argos_bin() / "argos"), "server", "nagios", "--config", str(config)],
        capture_output=True,
        text=True,
    )
    return nagios.returncode, nagios.stdout.strip(), json.loads(api.stdout)


STATES = {
    "all-ok": ["ok"] * TASKS,
    "warning": ["ok"] * 4 + ["warning"] * 2,
    "critical": ["ok", "warning", "critical", "critical", "ok", "ok"],
    "unknown": ["ok"] * 5 + ["unknown"],
    "warning-and-unknown": ["warning"] * 3 + ["ok"] * 2 + ["unknown"],
    "critical-and-unknown": ["critical"] * 2 + ["unknown"] * 3 + ["ok"],
}


@pytest.mark.parametrize("name", list(STATES))
def test_nagios_prints_and_exits_as_argos(name: str, tmp_path: Path) -> None:
    severities = STATES[name]
    code, line, api = argos_state(tmp_path, severities)
    counts = {s: severities.count(s) for s in ("ok", "warning", "critical", "unknown")}
    assert api["severities"] == counts
    mine_code, mine_line = nagios_report(counts)
    assert mine_code == code
    if code == 0:
        # Argos 0.10.3 forgets the f of its f-string there: it prints "{stats}" itself.
        assert line == "OK — All sites are ok|{stats}"
        assert mine_line == "OK — All sites are ok|ok=6; warning=0; critical=0; unknown=0;"
    else:
        assert mine_line == line


@pytest.fixture
def argos_api(tmp_path: Path) -> dict[str, Any]:
    """Argos's answers with two tasks ok, one warning, one critical, two never checked."""
    return argos_state(tmp_path, ["ok", "ok", "warning", "critical"])[2]


async def test_severities_and_stats_have_argos_shapes(
    database_url: str, argos_api: dict[str, Any]
) -> None:
    argos = argos_api
    s = Seeder(database_url)
    now = time.time()
    tasks = [task_def(i) for i in range(TASKS)]
    s.config(tasks, at=now - 600)
    # Judged just now: their next run (a minute later) stays ahead however slowly the web
    # server starts, so they count as upcoming.
    for t, severity in zip(tasks, ["ok", "ok", "warning", "critical"], strict=False):
        s.result(t, "success" if severity == "ok" else "failure", now - 1)
        s.judge(t, severity, None, now - 1)
    await s.flush()
    settings = WebSettings(cookie_secret="t" * 32, unauthenticated_access="all")
    async with web_server(database_url, settings) as web, httpx.AsyncClient(base_url=web.url) as c:
        severities = (await c.get("/api/severities")).json()
        stats = (await c.get("/api/stats")).json()
    # Two tasks never judged: unknown, as Argos's tasks start.
    assert severities == argos["severities"] == {"ok": 2, "warning": 1, "critical": 1, "unknown": 2}
    assert set(stats) == set(argos["stats"])
    # Judged tasks wait for their next run; the two never judged are due.
    assert stats == {"upcoming_tasks_count": 4, "results_count": 4, "selected_tasks_count": 2}


async def test_app_routes_have_argos_shapes(database_url: str, argos_api: dict[str, Any]) -> None:
    """``/api/app/``, ``version``, ``agents`` and ``domains``: Argos's keys and kinds of values,
    and its figures where both hold the same state (severities, domains, tasks)."""
    argos = argos_api["app"]
    s = Seeder(database_url)
    now = time.time()
    tasks = [task_def(i) for i in range(TASKS)]
    s.config(tasks, at=now - 600)
    for t, severity in zip(tasks, ["ok", "ok", "warning", "critical"], strict=False):
        s.result(t, "success" if severity == "ok" else "failure", now - 1)
        s.judge(t, severity, None, now - 1)
    s.heartbeat("paris-1", now - 5)
    await s.flush()
    settings = WebSettings(cookie_secret="t" * 32, unauthenticated_access="all")
    async with web_server(database_url, settings) as web, httpx.AsyncClient(base_url=web.url) as c:
        answers = [await c.get(f"/api/app/{p}") for p in ("", "version", "agents", "domains")]
        mine = dict(
            zip(("", "version", "agents", "domains"), (a.json() for a in answers), strict=True)
        )
    assert [a.status_code for a in answers] == [200] * 4
    for path, answer in mine.items():
        assert _kinds(answer) == _kinds(argos[path]) or path == "agents", path
    assert mine[""]["severities"] == argos[""]["severities"]
    assert (mine[""]["agents"], mine[""]["waiting_tasks"]) == (1, 2)
    assert mine["version"]["logged_in"] is argos["version"]["logged_in"] is False
    assert argos["agents"] == {"agents": {}}  # Argos's come from results; none there
    assert list(mine["agents"]["agents"]) == ["paris-1"]
    assert mine["domains"]["domains"] == argos["domains"]["domains"]
    assert mine["domains"]["total_task_count"] == argos["domains"]["total_task_count"] == TASKS
    # Argos's, set severities but no result: waiting; Tocsin's, checked a second ago.
    assert argos["domains"]["domains_last_checks"] == {"example.org": "Waiting to be checked"}
    assert " " in mine["domains"]["domains_last_checks"]["example.org"]


def _kinds(value: Any) -> Any:
    """The keys of a JSON value and the kinds of what they hold, not the values."""
    if isinstance(value, dict):
        return {k: _kinds(v) for k, v in value.items()} if len(value) < 10 else "dict"
    return "list" if isinstance(value, list) else type(value).__name__
