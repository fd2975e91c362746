"""The notifier end to end, against real NATS, PostgreSQL, SMTP and HTTP receivers:
one alert and one recovery per episode, thresholds, retries of a failing receiver,
silences, reminders, a crash between send and ack, a projector rebuild, no agent."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from events import codec, streams, subjects
from runtime import bus
from services.notifier.cli import add_silence, remove_silence
from services.notifier.service import Notifier, NotifierOptions
from services.projector.rebuild import rebuild
from tests.helpers import Stack, fetch, wait_for, write_config
from tests.notif_receivers import HttpReceiver, SmtpReceiver

CONFIG = """
general:
  frequency: 1s
  ipv6: false
  timeout: 2s
  retry_before_notification: {retry}
  {extra}
  alerts:
    ok: [mail, gotify, apprise:team]
    warning: [mail]
    critical: [mail, gotify, apprise:team]
    unknown: [mail]
    no_agent: [apprise:team]
  mail: {{mailfrom: tocsin@x, host: 127.0.0.1, port: {smtp}, addresses: [ops@x]}}
  gotify: [{{url: "{gotify}", tokens: [tok-1]}}]
  apprise: {{team: ["json://127.0.0.1:{hook}/hook/team"]}}
recurring_tasks:
  time_without_agent: {no_agent}
websites:
  - domain: {url}
    paths:
      - path: /flaky
        checks:
          - status-is: 200
"""


@pytest.fixture
def smtp() -> Any:
    server = SmtpReceiver().start()
    yield server
    server.stop()


@pytest.fixture
async def gotify() -> AsyncIterator[HttpReceiver]:
    r = await HttpReceiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def hook() -> AsyncIterator[HttpReceiver]:
    r = await HttpReceiver().start()
    yield r
    await r.stop()


def config(
    tmp_path: Path,
    demo_target,
    smtp,
    gotify,
    hook,
    retry: int = 0,
    extra: str = "",
    no_agent: str = "1h",
) -> Path:
    return write_config(
        tmp_path / "c.yaml",
        CONFIG.format(
            retry=retry,
            extra=extra,
            smtp=smtp.port,
            gotify=gotify.url,
            hook=hook.port,
            url=demo_target.url,
            no_agent=no_agent,
        ),
    )


class Running:
    """A notifier as a task of the test's loop, restartable."""

    def __init__(self, nats_url: str, database_url: str, path: Path) -> None:
        self.opts = NotifierOptions(
            nats_url, database_url, str(path), backoff=0.3, agent_check_every=0.2
        )
        self.notifier: Notifier | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self, kind: type[Notifier] = Notifier) -> Notifier:
        self.notifier = kind(self.opts)
        self.task = asyncio.create_task(self.notifier.run())
        return self.notifier

    async def stop(self) -> None:
        if self.notifier and self.task and not self.task.done():
            self.notifier.stop()
            await asyncio.wait_for(self.task, 20)


async def sent(db: str, kind: str | None = None) -> list[Any]:
    rows = await fetch(db, "SELECT * FROM notifications WHERE outcome = 'sent' ORDER BY seq")
    return [r for r in rows if kind is None or r["kind"] == kind]


async def failures(db: str) -> int:
    rows = await fetch(db, "SELECT failures FROM tasks")
    return rows[0]["failures"] if rows else 0


async def test_alert_once_recovery_once_and_a_failing_receiver_gets_it_once(
    nats_server, database_url, demo_target, smtp, gotify, hook, tmp_path
):
    demo_target.set("flaky", status=200, body="fine")
    path = config(tmp_path, demo_target, smtp, gotify, hook, retry=2)
    stack = Stack(nats_server.url, database_url, path)
    stack.scheduler()
    stack.agent()
    stack.projector()
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()
    try:
        await wait_for(
            lambda: fetch(database_url, "SELECT 1 FROM tasks WHERE severity = 'ok'"),
            what="the task judged ok",
        )
        gotify.failures_left = 2  # the gotify server is down for the first two tries
        demo_target.set("flaky", status=500)
        # retry_before_notification 2: nothing on the first two failures, alert on the third.
        await wait_for(lambda: failures(database_url), what="a failure")
        assert smtp.messages == []
        await wait_for(lambda: asyncio.sleep(0, len(smtp.messages) == 1), what="one alert mail")
        # The read model follows the same judgement as the mail, in either order.
        await wait_for(lambda: _at_least(database_url, 3), what="three failures shown")
        await wait_for(lambda: asyncio.sleep(0, len(gotify.calls) == 1), what="gotify, late")
        await wait_for(lambda: asyncio.sleep(0, len(hook.calls) == 1), what="apprise")
        await asyncio.sleep(2.5)  # more failing judgements: no repeat
        assert len(smtp.messages) == 1 and len(gotify.calls) == 1
        demo_target.set("flaky", status=200)
        await wait_for(lambda: asyncio.sleep(0, len(smtp.messages) == 2), what="recovery mail")
        await wait_for(
            lambda: asyncio.sleep(0, len(gotify.calls) == 2 and len(hook.calls) == 2),
            what="recovery on gotify and apprise",
        )
        assert "is now critical" in str(smtp.messages[0]["Subject"])
        assert "back to ok" in str(smtp.messages[1]["Subject"])
        # The audit trail: every send and the two failed gotify tries, in the read models.
        rows = await wait_for(lambda: _audit(database_url, 6), what="sends in the log")
        assert {(r["channel"], r["kind"]) for r in rows} == {
            (c, k) for c in ("mail", "gotify", "apprise:team") for k in ("alert", "recovery")
        }
        failed = await fetch(database_url, "SELECT * FROM notifications WHERE outcome='failed'")
        assert [(r["channel"], r["attempt"], r["final"]) for r in failed] == [
            ("gotify", 1, False),
            ("gotify", 2, False),
        ]
        assert all("tok-1" not in (r["recipient"] + (r["error"] or "")) for r in failed)
        # A rebuild of the read models replays everything and sends nothing.
        await rebuild(nats_server.url, database_url, progress=lambda *a: None)
        await asyncio.sleep(2)
        assert len(smtp.messages) == 2 and len(gotify.calls) == 2 and len(hook.calls) == 2
        assert len(await sent(database_url)) == 6
    finally:
        await notifier.stop()
        await stack.close()


async def _audit(db: str, n: int) -> list[Any] | None:
    rows = await sent(db)
    return rows if len(rows) >= n else None


class Crash(Exception):
    """Stands for the process dying: nothing after it runs."""


async def test_killed_between_send_and_ack_sends_nothing_twice(
    nats_server, database_url, demo_target, smtp, gotify, hook, tmp_path
):
    demo_target.set("flaky", status=500)
    path = config(tmp_path, demo_target, smtp, gotify, hook)
    stack = Stack(nats_server.url, database_url, path)
    notifier = Running(nats_server.url, database_url, path)

    class DiesBeforeAck(Notifier):
        async def acknowledge(self, msgs: list[Msg]) -> None:
            # The first judgement is already a failure: its mail goes out, then the process dies.
            await wait_for(lambda: asyncio.sleep(0, bool(smtp.messages)), 20, what="the mail")
            raise Crash

    notifier.start(DiesBeforeAck)
    stack.scheduler()
    stack.agent()
    try:
        assert notifier.task is not None
        with pytest.raises(Crash):
            await asyncio.wait_for(notifier.task, 30)
        assert len(smtp.messages) == 1
        nc = await nats.connect(nats_server.url)
        info = await nc.jetstream().consumer_info(streams.EVENTS, streams.NOTIFIER)
        assert info.num_ack_pending > 0  # the judgement that caused the mail is unacked
        notifier.start()
        deadline = time.monotonic() + 30

        async def all_acked() -> bool:
            i = await nc.jetstream().consumer_info(streams.EVENTS, streams.NOTIFIER)
            # The floor passes the crashed judgement only once it was redelivered and acked.
            return i.ack_floor.stream_seq >= info.delivered.stream_seq

        await wait_for(all_acked, timeout=deadline - time.monotonic(), what="redelivery acked")
        await nc.close()
        await asyncio.sleep(1)
        assert len(smtp.messages) == 1
    finally:
        await notifier.stop()
        await stack.close()


async def test_silence_holds_back_then_the_alert_goes_out(
    nats_server, database_url, demo_target, smtp, gotify, hook, tmp_path
):
    demo_target.set("flaky", status=200, body="fine")
    path = config(tmp_path, demo_target, smtp, gotify, hook)
    stack = Stack(nats_server.url, database_url, path)
    stack.scheduler()
    stack.agent()
    stack.projector()
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()
    try:
        await wait_for(
            lambda: fetch(database_url, "SELECT 1 FROM tasks WHERE severity = 'ok'"),
            what="the task judged ok",
        )
        domain = demo_target.url.removeprefix("http://")
        now = time.time()
        await add_silence(nats_server.url, "s1", now, now + 3600, "deploy", domain=domain)
        demo_target.set("flaky", status=500)
        await wait_for(lambda: _at_least(database_url, 3), what="three failures")
        assert smtp.messages == []
        rows = await fetch(database_url, "SELECT * FROM silences")
        assert [(r["id"], r["domain"], r["reason"]) for r in rows] == [("s1", domain, "deploy")]
        assert await remove_silence(nats_server.url, "s1")
        await wait_for(lambda: asyncio.sleep(0, len(smtp.messages) == 1), what="alert resumes")
        await asyncio.sleep(1.5)
        assert len(smtp.messages) == 1
    finally:
        await notifier.stop()
        await stack.close()


async def _at_least(db: str, n: int) -> bool:
    return await failures(db) >= n


async def test_reminders_follow_the_interval(
    nats_server, database_url, demo_target, smtp, gotify, hook, tmp_path
):
    demo_target.set("flaky", status=500)
    path = config(tmp_path, demo_target, smtp, gotify, hook, extra="reminder_interval: 2s")
    stack = Stack(nats_server.url, database_url, path)
    stack.scheduler()
    stack.agent()
    stack.projector()
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()
    try:
        rows = await wait_for(
            lambda: _kind(database_url, "mail", 3), timeout=40, what="an alert and two reminders"
        )
        assert [r["kind"] for r in rows[:3]] == ["alert", "reminder", "reminder"]
        # Decided on the judgements' times (when a mail is sent varies with the load): each
        # reminder comes with the first judgement at least the interval after the last mail.
        judged = await _judgement_times(nats_server.url)
        for a, b in itertools.pairwise(rows[:3]):
            told = judged[a["source_seq"]]
            assert judged[b["source_seq"]] - told >= 2.0
            between = [t for seq, t in judged.items() if a["source_seq"] < seq < b["source_seq"]]
            assert all(t - told < 2.0 for t in between), (told, between)
    finally:
        await notifier.stop()
        await stack.close()


async def _judgement_times(nats_url: str) -> dict[int, float]:
    nc = await nats.connect(nats_url)
    try:
        return {
            m.metadata.sequence.stream: codec.decode(m.data, m.subject).at
            async for m in bus.replay(nc.jetstream(), subjects.JUDGED_ALL)
        }
    finally:
        await nc.close()


async def _kind(db: str, channel: str, n: int) -> list[Any] | None:
    rows = [r for r in await sent(db) if r["channel"] == channel]
    return rows if len(rows) >= n else None


async def test_no_agent_alert_once_and_recovery_once(
    nats_server, database_url, demo_target, smtp, gotify, hook, tmp_path
):
    path = config(tmp_path, demo_target, smtp, gotify, hook, no_agent="2s")
    stack = Stack(nats_server.url, database_url, path)
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()
    try:
        await wait_for(lambda: asyncio.sleep(0, len(hook.calls) == 1), what="no-agent alert")
        assert "no agent" in hook.calls[0]["json"]["title"]
        await asyncio.sleep(3)  # Argos would repeat it every minute; once is enough
        assert len(hook.calls) == 1
        stack.agent(heartbeat=0.5)
        await wait_for(lambda: asyncio.sleep(0, len(hook.calls) == 2), what="agents back")
        assert "reporting again" in hook.calls[1]["json"]["title"]
        await asyncio.sleep(2)
        assert len(hook.calls) == 2
    finally:
        await notifier.stop()
        await stack.close()
