"""Hosts end to end against real NATS, PostgreSQL and SMTP: a host-only agent (its own process)
watches a small tmpfs the fixture mounts and fills; the scheduler judges, the notifier mails
one alert and one recovery; retry_before_notification holds the alert back and a restarted
scheduler counts on; a killed agent's host becomes unknown within two intervals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from checks.hostjudge import group, task_id
from events import codec, streams, subjects
from events.types import HostObserved, TaskJudged
from services.notifier.service import Notifier, NotifierOptions
from tests.helpers import Stack, fetch, logged, wait_for, write_config
from tests.notif_receivers import SmtpReceiver

INTERVAL = 2.0
CONFIG = """
general:
  frequency: 1m
  alerts:
    ok: [mail]
    warning: [mail]
    critical: [mail]
    unknown: [mail]
  mail: {{mailfrom: tocsin@x, host: 127.0.0.1, port: {smtp}, addresses: [ops@x]}}
websites: []
hosts:
  # Only the test's filesystem is judged: the machine's own figures are not the test's.
  cpu: false
  memory: false
  swap: false
  load: false
  inodes: false
  disk: {{warning: 50, critical: 80}}
  filesystems: {{include: ["{mount}"]}}
"""


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: its used space is what the test writes there."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tocsin-test", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        why = f"mounting a tmpfs was refused ({done.stderr.strip() or done.returncode})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}: CI must run this test as root")
        pytest.skip(f"{why}: run as root to test a host's disk end to end")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver().start()
    yield server
    server.stop()


def start_agent(nats_url: str, name: str, mount: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "agent",
            "--host-only",
            "--nats-url",
            nats_url,
            "--name",
            name,
            "--host-interval",
            str(INTERVAL),
            "--host-include-mount",
            str(mount),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def subjects_of(smtp: SmtpReceiver) -> list[str]:
    return [str(m["Subject"]) for m in smtp.messages]


async def _severity(database_url: str, task: str) -> str | None:
    rows = await fetch(database_url, "SELECT severity FROM tasks WHERE id = $1", task)
    return rows[0]["severity"] if rows else None


class Services:
    def __init__(self, nats_url: str, database_url: str, config: Path) -> None:
        self.stack = Stack(nats_url, database_url, config)
        self.notifier = Notifier(NotifierOptions(nats_url, database_url, str(config)))
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Services:
        self.stack.scheduler()
        self.stack.projector()
        self.task = asyncio.create_task(self.notifier.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.notifier.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 20)
        await self.stack.close()


async def test_full_disk_alerts_once_and_recovers_once(
    nats_server, database_url, smtp, tmpfs, tmp_path
):
    path = write_config(tmp_path / "c.yaml", CONFIG.format(smtp=smtp.port, mount=tmpfs))
    disk = task_id("h1", "disk", str(tmpfs))
    agent = start_agent(nats_server.url, "h1", tmpfs)
    try:
        async with Services(nats_server.url, database_url, path):
            await wait_for(lambda: _severity(database_url, disk), what="the disk judged ok")
            assert await _severity(database_url, disk) == "ok"
            host = await fetch(database_url, "SELECT filesystems FROM hosts WHERE agent = 'h1'")
            assert str(tmpfs) in host[0]["filesystems"]  # the read model of the hosts page
            # 900 KiB of 1 MiB: past the critical 80 %.
            (tmpfs / "ballast").write_bytes(b"\xff" * 900 * 1024)
            await wait_for(lambda: asyncio.sleep(0, len(smtp.messages) == 1), what="one alert mail")
            # The mail and the read model follow the same judgement, in either order.
            await wait_for(lambda: _is(database_url, disk, "critical"), what="critical shown")
            await asyncio.sleep(3 * INTERVAL)  # more critical judgements: no second mail
            assert len(smtp.messages) == 1
            assert f"host:h1: disk {tmpfs}" in subjects_of(smtp)[0]
            assert "is now critical" in subjects_of(smtp)[0]
            (tmpfs / "ballast").unlink()
            await wait_for(
                lambda: asyncio.sleep(0, len(smtp.messages) == 2), what="one recovery mail"
            )
            await asyncio.sleep(3 * INTERVAL)
            assert len(smtp.messages) == 2 and "back to ok" in subjects_of(smtp)[1]
            assert await _severity(database_url, disk) == "ok"
    finally:
        agent.kill()
        agent.wait()


async def test_killed_agent_makes_its_host_unknown_within_two_intervals(
    nats_server, database_url, smtp, tmpfs, tmp_path
):
    path = write_config(tmp_path / "c.yaml", CONFIG.format(smtp=smtp.port, mount=tmpfs))
    disk = task_id("h2", "disk", str(tmpfs))
    agent = start_agent(nats_server.url, "h2", tmpfs)
    try:
        async with Services(nats_server.url, database_url, path):
            await wait_for(lambda: _severity(database_url, disk), what="the disk judged")
            agent.send_signal(signal.SIGKILL)
            agent.wait()
            await wait_for(lambda: _is(database_url, disk, "unknown"), what="the host unknown")
            seen = await logged(nats_server.url, subjects.host_observed("h2", "default"))
            judged = [
                e
                for e in await logged(nats_server.url, subjects.judged(group("h2")))
                if isinstance(e, TaskJudged)
            ]
            last = max(e.at for e in seen if isinstance(e, HostObserved))
            unknown = next(e for e in judged if e.judgements[0].severity == "unknown")
            silent = unknown.at - last
            print(f"unknown {silent:.2f}s after the last figures (interval {INTERVAL}s)")
            assert silent <= 2 * INTERVAL
            assert "no figures from host h2" in unknown.judgements[0].reason
            # The notifier mails after the projector shows it: wait for the mail, not the row.
            await wait_for(
                lambda: asyncio.sleep(0, any("is now unknown" in s for s in subjects_of(smtp))),
                what="the unknown mail",
            )
    finally:
        with contextlib.suppress(ProcessLookupError):
            agent.kill()
        agent.wait()


async def _is(database_url: str, task: str, severity: str) -> bool:
    return await _severity(database_url, task) == severity


async def _failures(database_url: str, task: str) -> int:
    rows = await fetch(database_url, "SELECT failures FROM tasks WHERE id = $1", task)
    return rows[0]["failures"] if rows else 0


async def test_retries_before_the_alert_and_a_scheduler_restart_alerts_nothing_again(
    nats_server, database_url, smtp, tmpfs, tmp_path
):
    body = CONFIG.format(smtp=smtp.port, mount=tmpfs) + "  retry_before_notification: 2\n"
    path = write_config(tmp_path / "c.yaml", body)
    disk = task_id("h3", "disk", str(tmpfs))
    (tmpfs / "ballast").write_bytes(b"\xff" * 900 * 1024)  # full from the first figures on
    agent = start_agent(nats_server.url, "h3", tmpfs)
    try:
        async with Services(nats_server.url, database_url, path) as services:
            await wait_for(lambda: _is(database_url, disk, "critical"), what="critical")
            await wait_for(lambda: asyncio.sleep(0, len(smtp.messages) == 1), what="the alert")
            # retry_before_notification 2: the alert went out on the third critical figure.
            # The outcome is an event of its own, folded after the mail went out.
            sent = await wait_for(
                lambda: fetch(database_url, "SELECT * FROM notifications WHERE outcome='sent'"),
                what="the sent outcome shown",
            )
            judged = await fetch(
                database_url,
                "SELECT count(*) AS n FROM severity_changes WHERE task_id = $1",
                disk,
            )
            assert len(sent) == 1 and judged[0]["n"] == 1
            alerted = await _event_at(nats_server.url, sent[0]["source_seq"])
            assert isinstance(alerted, TaskJudged)
            assert [j.failures for j in alerted.judgements if j.task == disk] == [3]
            first = services.stack.services[0][0]
            await services.stack.stop(first)
            before = await _failures(database_url, disk)
            services.stack.scheduler()
            await wait_for(
                lambda: _more(database_url, disk, before + 2),
                what="judgements by the new scheduler",
            )
            assert await _failures(database_url, disk) >= before + 2  # counted on, not reset
            assert len(smtp.messages) == 1
    finally:
        agent.kill()
        agent.wait()


async def _event_at(nats_url: str, seq: int) -> Any:
    nc = await nats.connect(nats_url)
    try:
        raw = await nc.jetstream().get_msg(streams.EVENTS, seq)
        return codec.decode(raw.data or b"", raw.subject or "")
    finally:
        await nc.close()


async def _more(database_url: str, task: str, n: int) -> bool:
    return await _failures(database_url, task) >= n
