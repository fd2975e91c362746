"""Backup of EVENTS, restore into a fresh server, rebuild: the read models equal the originals."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from events import streams, subjects
from runtime.embedded import NatsServer
from services.cli import main as cli
from services.projector import backup as backups
from services.projector.backup import BackupError, backup, restore
from services.projector.rebuild import checksum, rebuild
from tests.clirun import tocsin
from tests.faults.harness import Services, config_body, count, quiesce_and_check
from tests.helpers import DemoTarget, wait_for


async def _checksum(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        return await checksum(conn)
    finally:
        await conn.close()


async def test_backup_restore_rebuild_equals_the_original(
    nats_server, database_url: str, pg_root: str, demo_target: DemoTarget, tmp_path: Path
):
    demo_target.set("up", status=200, body="ok")
    demo_target.set("down", status=500, body="no")
    config = tmp_path / "tocsin.yaml"
    config.write_text(config_body(demo_target.url, ["up", "down"]))
    (tmp_path / "logs").mkdir()
    svc = Services(nats_server.url, database_url, config, tmp_path / "logs")
    try:
        procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]
        # Every read model must have rows to compare (checked below): verdicts, and the
        # agent's first host figures, which come on their own clock, not the checks'.
        await wait_for(lambda: _filled(database_url), 120, what="verdicts and a host sample")
        nc = await nats.connect(nats_server.url)
        # Poison too: its dead letters carry the stream's store time, which a restore keeps.
        await nc.jetstream().publish("tocsin.check.completed.a1.g", b'{"type":"x","at":1e999}')
        await nc.close()
        await quiesce_and_check(svc, [procs[1]], [procs[2]])
    finally:
        await svc.close()
    original = await _checksum(database_url)
    assert all(original.values()), original

    saved = tmp_path / "events.backup"
    nc = await nats.connect(nats_server.url)
    last = await backup(nc, saved)
    await nc.close()
    assert last > 0 and saved.stat().st_size > 0

    fresh = NatsServer(tmp_path / "fresh").start()
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_root)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    other_db = f"{pg_root.rpartition('/')[0]}/{name}"
    try:
        nc = await nats.connect(fresh.url)
        assert await restore(nc, saved) == last
        with pytest.raises(BackupError):  # never over an existing log
            await restore(nc, saved)
        info = await nc.jetstream().stream_info(streams.EVENTS)
        assert info.state.last_seq == last
        await nc.close()
        assert await rebuild(fresh.url, other_db, progress=lambda *a: None) == last
        assert await _checksum(other_db) == original
    finally:
        fresh.stop()
        admin = await asyncpg.connect(pg_root)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _filled(database_url: str) -> bool:
    tables = ("severity_changes", "host_samples", "hosts", "agents")
    return all([await count(database_url, f"SELECT count(*) FROM {t}") for t in tables])


def test_backup_command_says_what_it_wrote(nats_server, tmp_path: Path, capsys):
    assert cli(["log", "backup", str(tmp_path / "b"), "--nats-url", nats_server.url]) == 1
    assert "EVENTS" in capsys.readouterr().err  # no stream yet: a clear error, no traceback


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(subjects.CONFIG_APPLIED, id="the-configuration"),
        pytest.param(subjects.judged("g1"), id="a-judgement"),
    ],
)
async def test_a_backup_answers_only_the_servers_flow_control(
    nats_server: NatsServer, tmp_path: Path, reply: str
) -> None:
    """A message on the backup's inbox that hands another reply subject than the server's
    flow control (whoever may publish into inboxes: the scheduler may) gets no answer: whoever
    runs a backup (an admin) may publish anywhere, on the log's subjects and JetStream's API."""
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        await js.publish(subjects.deadletter("test-before"), b"{}")
        inbox = nc.new_inbox()
        chunks: asyncio.Queue[Any] = asyncio.Queue()
        await nc.subscribe(inbox, cb=chunks.put)
        await nc.publish(inbox, b"not the server's", reply=reply)
        await nc.publish(inbox, b"")  # the end of a snapshot
        with (tmp_path / "backup").open("wb") as out:
            await backups._receive(chunks, out, streams.EVENTS)
        # Published after whatever the backup answered: stored after it.
        mark = await js.publish(subjects.deadletter("test-mark"), b"{}")
        info = await js.stream_info(streams.EVENTS)
        assert (mark.seq, info.state.messages) == (2, 2)
    finally:
        await nc.close()


def test_a_backup_of_many_chunks_ends_well(nats_server: NatsServer, tmp_path: Path) -> None:
    """A snapshot over one chunk ends with an empty message carrying Status 204 (nats-server
    2.10+): the end, not a break. Backed up as the operator types it, then restored."""

    async def fill() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        for _ in range(400):
            await js.publish("tocsin.filler.test", os.urandom(1000))
        await nc.close()

    asyncio.run(fill())
    saved = tmp_path / "r3.backup"
    done = tocsin(["log", "backup", str(saved), "--nats-url", nats_server.url], tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert saved.stat().st_size > 2 * backups.CHUNK
    assert not list(tmp_path.glob("*.partial"))

    async def restored() -> int:
        fresh = NatsServer(tmp_path / "fresh").start()
        try:
            nc = await nats.connect(fresh.url)
            last = await restore(nc, saved)
            await nc.close()
            return last
        finally:
            fresh.stop()

    assert asyncio.run(restored()) == 400


async def test_a_snapshot_broken_off_by_the_server_is_an_error(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        inbox = nc.new_inbox()
        chunks: asyncio.Queue[Any] = asyncio.Queue()
        await nc.subscribe(inbox, cb=chunks.put)
        await nc.publish(inbox, b"some", headers={"Status": "100"})
        await nc.publish(inbox, b"", headers={"Status": "500", "Description": "disk gone"})
        with (tmp_path / "backup").open("wb") as out, pytest.raises(BackupError, match="500"):
            await backups._receive(chunks, out, streams.EVENTS)
    finally:
        await nc.close()
