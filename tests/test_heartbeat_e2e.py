"""A crontab-style heartbeat end to end through the log: curl pings the web's ping endpoint,
the scheduler judges the pings and their absence, the projector shows them.

A loop pings (one run with /start and an exit code, and its output as the log), then stops:
the monitor goes critical after its grace, once, and stays so across a scheduler restart
and further missed deadlines; the next ping brings one recovery."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from services.notifier.service import Notifier, NotifierOptions
from services.web.settings import WebSettings
from tests.helpers import Stack, fetch, wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.web_fixtures import web_server


async def curl(url: str, body: str | None = None) -> str:
    """As in a crontab: curl -fsS -m 10 --retry 5 URL (the body as the run's log)."""
    args = ["curl", "-fsS", "-m", "10", "--retry", "5", url]
    if body is not None:
        args += ["--data-binary", body]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def _severity(db: str) -> str | None:
    rows = await fetch(db, "SELECT severity FROM tasks WHERE check_kind = 'heartbeat'")
    return rows[0]["severity"] if rows else None


async def _changes(db: str) -> list[tuple[str | None, str]]:
    rows = await fetch(db, "SELECT previous, severity FROM severity_changes ORDER BY seq")
    return [(r["previous"], r["severity"]) for r in rows]


async def test_heartbeat_late_then_recovered(nats_server, database_url, tmp_path: Path):
    key = str(uuid.uuid4())
    hook = await HttpReceiver().start()
    config = write_config(
        tmp_path / "c.yaml",
        "general:\n  frequency: 1m\n"
        "  alerts: {ok: [apprise:team], critical: [apprise:team], warning: [], unknown: []}\n"
        f'  apprise: {{team: ["json://127.0.0.1:{hook.port}/hook/team"]}}\n'
        "websites:\n  - domain: heartbeat://nightly-backup\n"
        # A grace of 3 s, not 1: the run's end (/0) must reach the scheduler within it after
        # /start, through curl and the web, on a loaded machine too.
        f"    checks:\n      - heartbeat: {{uuid: {key}, period: 1s, grace: 3s}}\n",
    )
    stack = Stack(nats_server.url, database_url, config)
    scheduler = stack.scheduler()
    stack.projector()
    notifier = Notifier(NotifierOptions(nats_server.url, database_url, str(config), backoff=0.3))
    notifying = asyncio.create_task(notifier.run())
    settings = WebSettings(
        cookie_secret="t" * 32, nats_url=nats_server.url, unauthenticated_access="all"
    )
    try:
        async with web_server(database_url, settings) as web:
            url = f"{web.url}/ping/{key}"

            async def known() -> bool:
                return bool(await fetch(database_url, "SELECT 1 FROM tasks"))

            await wait_for(known, 30, what="the monitor in the read model")
            assert await curl(url + "/start") == "OK\n"
            assert await curl(url + "/0", body="backup of 3 databases: done") == "OK\n"
            for i in range(4):  # the crontab's loop, faster
                await curl(url, body=f"run {i}")
                await asyncio.sleep(0.3)

            async def ok() -> bool:
                return await _severity(database_url) == "ok"

            await wait_for(ok, 30, what="the monitor ok while pinged")

            # The loop stops: critical after period + grace.
            async def critical() -> bool:
                return await _severity(database_url) == "critical"

            await wait_for(critical, 30, what="the monitor late")
            # A restarted scheduler restores the deadline and severity from the log: further
            # missed deadlines judge it critical again, with no new alert.
            await stack.stop(scheduler)
            scheduler = stack.scheduler()

            async def pings_and_late() -> bool:
                rows = await fetch(
                    database_url,
                    "SELECT count(*) AS n FROM results r JOIN tasks t ON t.id = r.task_id "
                    "WHERE t.check_kind = 'heartbeat'",
                )
                late = await fetch(
                    database_url, "SELECT reason FROM tasks WHERE reason LIKE 'late:%'"
                )
                return bool(rows[0]["n"] == 6 and late)

            await wait_for(pings_and_late, 30, what="the late verdicts")
            await asyncio.sleep(4.5)  # at least one more deadline (4 s) passes, after the restart
            assert await _changes(database_url) == [(None, "ok"), ("ok", "critical")]
            await curl(url)
            await wait_for(ok, 30, what="the recovery")
            assert await _changes(database_url) == [
                (None, "ok"),
                ("ok", "critical"),
                ("critical", "ok"),
            ]

            async def notified() -> list[str]:
                rows = await fetch(
                    database_url,
                    "SELECT kind FROM notifications WHERE outcome = 'sent' ORDER BY seq",
                )
                return [r["kind"] for r in rows] if len(rows) >= 2 else []

            # One alert and one recovery, to the receiver too.
            assert await wait_for(notified, 30, what="the alert and the recovery") == [
                "alert",
                "recovery",
            ]
            assert len(hook.calls) == 2
            # The task page lists the pings; a ping's page shows its log.
            (task,) = await fetch(database_url, "SELECT id FROM tasks")
            async with httpx.AsyncClient(base_url=web.url) as client:
                page = await client.get(f"/tasks/{task['id']}")
                assert page.status_code == 200
                assert "ping received" in page.text and "the job started" in page.text
                (ping,) = await fetch(
                    database_url,
                    "SELECT seq FROM results WHERE detail = 'ping received (exit code 0)'",
                )
                result = await client.get(f"/tasks/{task['id']}/results/{ping['seq']}")
                assert "backup of 3 databases: done" in result.text
                assert 'id="ping-log"' in result.text
                # Unknown monitors and bad actions are 404, never a 500.
                assert (await client.get(f"/ping/{uuid.uuid4()}")).status_code == 404
                assert (await client.get(f"/ping/{key}/nonsense")).status_code == 404
                assert (await client.get("/ping/not-a-uuid")).status_code == 404
    finally:
        notifier.stop()
        await asyncio.wait_for(notifying, 20)
        await stack.close()
        await hook.stop()
