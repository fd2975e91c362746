"""An Argos history carries over: a database filled by the real Argos 0.10.3 (its migrations,
its server and its agent checking the local demo target) is imported into the log, shows
in the read models and task pages at its original times, and a second import adds nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import nats
import pytest

from configuration.config import parse
from configuration.inforce import apply_config
from events import codec, streams
from runtime import bus
from runtime.embedded import free_port
from services.argos.history import import_history, read_argos
from tests.argos_support import argos_bin
from tests.helpers import Stack, fetch, wait_for
from tests.test_web_pages import login
from tests.web_fixtures import add_user, web_server

TOKEN = "argos-import-token"
#: Argos writes its server's local time, without a zone; its server runs here.
LOCAL = datetime.now().astimezone().tzinfo


def _argos_file(tmp_path: Path, db: str, target: str) -> Path:
    path = tmp_path / "argos.yaml"
    path.write_text(
        f"""\
general:
  db: {{url: "{db}"}}
  cookie_secret: "s3cret"
  frequency: "3s"
  ipv6: false
  alerts: {{ok: [local], warning: [local], critical: [local], unknown: [local],
           no_agent: [local]}}
service: {{secrets: ["{TOKEN}"]}}
ssl: {{thresholds: [{{"1d": critical}}]}}
recurring_tasks: {{max_results_age: "1d", max_lock_seconds: 100, time_without_agent: 5}}
websites:
  - domain: "{target}"
    paths:
      - path: /healthy
        checks: [status-is: 200, body-contains: fine]
      - path: /broken
        checks: [status-is: 200]
"""
    )
    return path


@pytest.fixture(scope="module")
def argos() -> Path:
    return argos_bin()


async def _run(*cmd: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


async def _count(db: str, query: str) -> int:
    if db.startswith("sqlite"):
        conn = sqlite3.connect(db.split(":///", 1)[1])
        try:
            return int(conn.execute(query).fetchone()[0] or 0)
        finally:
            conn.close()
    pg = await asyncpg.connect(db)
    try:
        return int(await pg.fetchval(query) or 0)
    finally:
        await pg.close()


async def _fill_with_argos(argos: Path, config: Path, db: str, tmp_path: Path) -> int:
    """Argos's migrations, its tasks, then its server and agent until each task has three
    results; the number of results."""
    await _run(str(argos / "argos"), "server", "migrate", "--config", str(config))
    await _run(str(argos / "argos"), "server", "reload-config", "--config", str(config))
    port = free_port()
    log = (tmp_path / "argos.log").open("w")
    server = await asyncio.create_subprocess_exec(
        str(argos / "argos"), "server", "start", "--config", str(config), "--port", str(port),
        stdout=log, stderr=log,
    )  # fmt: skip
    agent = await asyncio.create_subprocess_exec(
        str(argos / "argos"), "agent", f"http://127.0.0.1:{port}", TOKEN,
        "--wait-time", "1", "--name", "argos-1",
        stdout=log, stderr=log,
    )  # fmt: skip
    try:

        async def enough() -> int:
            low = await _count(
                db,
                "SELECT min(n) FROM (SELECT count(r.id) AS n FROM tasks t "
                "LEFT JOIN results r ON r.task_id = t.id GROUP BY t.id) c",
            )
            return await _count(db, "SELECT count(*) FROM results") if low >= 3 else 0

        return int(await wait_for(enough, 90, what="three Argos results per task"))
    finally:
        for proc in (agent, server):
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 20)


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
async def test_argos_history_is_imported_once_at_its_times(
    kind: str,
    argos: Path,
    nats_server,
    pg_root: str,
    database_url: str,
    demo_target,
    tmp_path: Path,
) -> None:
    if kind == "sqlite":
        argos_db = f"sqlite:///{tmp_path}/argos.db"
    else:
        # Argos gets a database of its own on the same embedded server.
        argos_db = database_url.rsplit("/", 1)[0] + f"/argos_{int(time.time() * 1000)}"
        admin = await asyncpg.connect(pg_root)
        await admin.execute(f'CREATE DATABASE "{argos_db.rsplit("/", 1)[1]}"')
        await admin.close()
    config = _argos_file(tmp_path, argos_db, demo_target.url)
    count = await _fill_with_argos(argos, config, argos_db, tmp_path)
    task_rows, result_rows = await read_argos(argos_db)
    urls = {t["id"]: (t["url"], t["check"]) for t in task_rows}
    argos_rows = sorted((r["submitted_at"], *urls[r["task_id"]]) for r in result_rows)

    # Tocsin reads the very same file; its tasks are in force before the import.
    cfg = parse(config)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await streams.ensure(js, cfg.locations)
        await apply_config(js, cfg, "test")
        first = await import_history(js, argos_db, cfg.tasks, LOCAL)
    finally:
        await nc.close()
    assert (first.tasks, first.matched, first.unmatched) == (3, 3, [])
    assert first.published >= count and first.judged_by_tocsin == []
    # Again, through the command: nothing more.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "import", "argos",
        "--database-url", argos_db, "--config", str(config), "--nats-url", nats_server.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await proc.communicate()
    out = stdout.decode()
    assert proc.returncode == 0, stderr.decode()
    assert out.splitlines()[0] == (
        f"3 Argos tasks, 3 matched a configured task; 0 results imported, "
        f"{first.published} imported before"
    )

    stack = Stack(nats_server.url, database_url, config)
    stack.projector()
    try:

        async def folded() -> bool:
            rows = await fetch(database_url, "SELECT count(*) AS n FROM results")
            return rows[0]["n"] == first.published

        await wait_for(folded, 30, what="every imported result in the read model")
    finally:
        await stack.close()
    # The original times and Argos's severities, task by task.
    rows = await fetch(
        database_url,
        "SELECT r.checked_at, t.url, t.check_kind FROM results r JOIN tasks t ON t.id = r.task_id "
        "ORDER BY r.checked_at",
    )
    assert (
        sorted(
            (r["checked_at"].astimezone(LOCAL).replace(tzinfo=None), r["url"], r["check_kind"])
            for r in rows
        )
        == argos_rows
    )
    tasks = await fetch(database_url, "SELECT id, url, check_kind, severity FROM tasks")
    severities = {(t["url"].rsplit("/", 1)[1], t["check_kind"]): t["severity"] for t in tasks}
    assert severities == {
        ("healthy", "status-is"): "ok",
        ("healthy", "body-contains"): "ok",
        ("broken", "status-is"): "critical",
    }
    broken = next(t["id"] for t in tasks if t["url"].endswith("/broken"))
    changes = await fetch(
        database_url, "SELECT previous, severity FROM severity_changes WHERE task_id = $1", broken
    )
    assert [(c["previous"], c["severity"]) for c in changes] == [(None, "critical")]

    await add_user(database_url, "ops", "s3cret")
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        assert (await login(c, "ops", "s3cret")).status_code == 303
        page = await c.get(f"/tasks/{broken}")
    assert page.status_code == 200
    assert "Argos: failure" in page.text and "argos-argos-1" in page.text


#: Argos task rows Tocsin cannot read (hand-edited or older databases), and what is said.
UNREADABLE = {
    "headers-contain-stored-as-a-scalar": (
        {"check": "headers-contain", "expected": "content-type"},
        "its expected value 'content-type'",
    ),
    "http-to-https-without-range-or-list": (
        {"check": "http-to-https", "expected": '{"codes": [301]}'},
        "its expected value '{\"codes\": [301]}'",
    ),
    "status-is-not-a-number": (
        {"check": "status-is", "expected": "two hundred"},
        "its expected value 'two hundred'",
    ),
    "request-data-not-json": ({"request_data": "{oops"}, "its request_data '{oops'"),
    "ip-version-not-a-number": ({"ip_version": "x"}, "its ip_version 'x'"),
}


ONE_SITE = (
    "general: {frequency: 1m, ipv6: false}\n"
    "websites:\n  - domain: https://example.org\n    paths:\n"
    "      - path: /\n        checks: [status-is: 200]\n"
)
GOOD_TASK = {"url": "https://example.org/", "method": "GET", "request_data": None}
GOOD_TASK |= {"check": "status-is", "expected": "200", "ip_version": "4"}


def _argos_db(tmp_path: Path, tasks: list[tuple], results: list[tuple]) -> str:
    """An Argos database of ``tasks`` (id, then the values of a row like ``GOOD_TASK``) and
    ``results`` (id, task id, agent, submitted at, status, severity, context)."""
    db = tmp_path / "argos.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        'CREATE TABLE tasks (id INTEGER, url TEXT, method TEXT, request_data TEXT, "check" TEXT,'
        " expected TEXT, ip_version TEXT);"
        "CREATE TABLE results (id INTEGER, task_id INTEGER, agent_id TEXT, submitted_at TEXT,"
        " status TEXT, severity TEXT, context TEXT);"
    )
    conn.executemany("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)", tasks)
    conn.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", results)
    conn.commit()
    conn.close()
    return f"sqlite:///{db}"


@pytest.mark.parametrize(("row", "said"), UNREADABLE.values(), ids=UNREADABLE.keys())
async def test_an_unreadable_argos_task_is_unmatched_and_the_rest_imported(
    row: dict, said: str, nats_server, tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(ONE_SITE)
    other = GOOD_TASK | {"url": "https://example.org/x"} | row
    db = _argos_db(
        tmp_path,
        [(1, *GOOD_TASK.values()), (2, *other.values())],
        [(i, i, "a", "2025-01-01 12:00:00", "success", "ok", "{}") for i in (1, 2)],
    )
    cfg = parse(config)
    nc = await nats.connect(nats_server.url)
    try:
        await streams.ensure(nc.jetstream(), cfg.locations)
        report = await import_history(nc.jetstream(), db, cfg.tasks, LOCAL)
    finally:
        await nc.close()
    assert (report.tasks, report.matched, report.published) == (2, 1, 1)
    [unmatched] = report.unmatched
    assert unmatched.startswith("https://example.org/x ") and f"cannot read {said}" in unmatched


async def test_argos_results_the_log_would_refuse_are_reported_not_published(
    nats_server, tmp_path: Path
) -> None:
    """A result dated before 2000, or whose error text is past its bound, made events every
    reader dead-lettered: it is now listed as not imported, with the contract's reason."""
    config = tmp_path / "c.yaml"
    config.write_text(ONE_SITE)
    long_error = '{"error_type": "Boom", "error_message": "%s"}' % ("x" * 70_000)
    db = _argos_db(
        tmp_path,
        [(1, *GOOD_TASK.values())],
        [
            (1, 1, "a", "2025-01-01 12:00:00", "error", "unknown", "{}"),
            (2, 1, "a", "1990-01-01 12:00:00", "error", "unknown", "{}"),
            (3, 1, "a", "2025-01-01 12:01:00", "error", "unknown", long_error),
        ],
    )
    cfg = parse(config)
    nc = await nats.connect(nats_server.url)
    try:
        await streams.ensure(nc.jetstream(), cfg.locations)
        report = await import_history(nc.jetstream(), db, cfg.tasks, LOCAL)
        logged = [m async for m in bus.replay(nc.jetstream(), "tocsin.imported.>")]
    finally:
        await nc.close()
    assert report.published == 1 and len(logged) == 3  # request, completion, verdict
    for m in logged:
        codec.decode(m.data, m.subject)
    assert [line.split(":")[0] for line in report.refused] == ["result 2", "result 3"]
    assert ">= 946684800.0" in report.refused[0] and "of length <= 65536" in report.refused[1]
