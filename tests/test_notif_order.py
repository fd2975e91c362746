"""A receiver gets a task's changes in order and ends on the latest: the outbox's superseding
and claiming as a table (real PostgreSQL, readable keys), then end to end through the notifier
(real NATS and PostgreSQL, a local webhook receiver): a retried alert after its recovery, a
notifier stopped mid-send, a task flapping within a group window."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
import pytest

from configuration import config as configuration
from events import codec, subjects
from events.types import Judgement, NotificationFailed, Severity, TaskJudged
from services.notifier import store
from services.notifier.message import Message
from tests.helpers import fetch, wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_service import Running
from tests.test_notif_webhook import _consumer_ready

OK_KINDS = ("recovery", "agents_back", "location_healthy")


def _message(name: str, kind: str) -> Message:
    """``name``: ``b:11`` is task b judged at stream sequence 11 (``@dev``: for recipient
    dev, else ops); for the agents and locations (``L1:5``) the part before ``:`` is what it
    is about. Agent-wide rows carry no sequence, as the notifier writes them."""
    what, seq = name.split("@")[0].split(":")
    agents = kind in ("no_agent", "agents_back")
    return Message(
        key=name,
        kind=kind,
        severity="ok" if kind in OK_KINDS else "critical",
        at=0.0,
        task=what if kind in ("alert", "reminder", "recovery") else None,
        group=what if kind.startswith("location") else None,
        source_seq=0 if agents else int(seq),
    )


async def _play(conn: asyncpg.Connection, steps: str) -> list[list[str]]:
    """Run the steps (``;`` between them); what each ``claim`` claimed."""
    claims = []
    for step in steps.split("; "):
        verb, *args = step.split()
        if verb == "queue":
            name, kind = args
            to = name.split("@")[1] if "@" in name else "ops"
            async with conn.transaction():
                await store.enqueue(conn, name, "webhook:ops", to, _message(name, kind))
        elif verb == "claim":
            claims.append(sorted(r["key"] for r in await store.claim(conn, 100, 60)))
        elif verb in ("sent", "fails"):
            (key,) = args
            r = await conn.fetchrow(f"SELECT * FROM {store.S}.outbox WHERE key = $1", key)
            m = msgspec.json.decode(r["message"], type=Message)
            if verb == "sent":
                await store.mark_sent(conn, key, r["channel"], r["recipient"], m, r["attempts"])
            else:
                await store.mark_failed(
                    conn, key, r["channel"], r["recipient"], m, r["attempts"], "answered 500", 600
                )
        elif verb == "expire":  # the notifier that claimed it died: its lease ran out
            await conn.execute(
                f"UPDATE {store.S}.outbox SET claimed_until = now() - interval '1 second' "
                "WHERE key = $1",
                args[0],
            )
    return claims


STATE = f"""SELECT key, CASE WHEN sent_at IS NOT NULL THEN 'sent'
                            WHEN given_up_at IS NOT NULL THEN last_error
                            WHEN claimed_until > now() THEN 'in flight'
                            ELSE 'waiting' END AS state
            FROM {store.S}.outbox ORDER BY key"""


@pytest.mark.parametrize(
    ("steps", "claims", "states"),
    [
        pytest.param(
            "queue b:10 alert; queue b:11 recovery; claim",
            [["b:11"]],
            {"b:10": "superseded by b:11", "b:11": "in flight"},
            id="a-recovery-supersedes-the-alert-waiting",
        ),
        pytest.param(
            "queue b:10 alert; claim; fails b:10; queue b:11 recovery; claim; sent b:11; claim",
            [["b:10"], ["b:11"], []],
            {"b:10": "superseded by b:11", "b:11": "sent"},
            id="a-failed-alert-is-not-retried-after-its-recovery",
        ),
        pytest.param(
            "queue b:10 alert; claim; queue b:11 recovery; claim; fails b:10; claim",
            [["b:10"], [], ["b:11"]],
            {"b:10": "superseded by b:11", "b:11": "in flight"},
            id="an-alert-failing-while-its-recovery-waits-is-not-retried",
        ),
        pytest.param(
            "queue b:10 alert; claim; queue b:11 recovery; claim; sent b:10; claim",
            [["b:10"], [], ["b:11"]],
            {"b:10": "sent", "b:11": "in flight"},
            id="the-newer-waits-for-the-older-in-flight",
        ),
        pytest.param(
            "queue b:10 alert; claim; queue b:11 reminder; queue b:12 reminder; claim; "
            "expire b:10; claim",
            [["b:10"], [], ["b:12"]],
            {"b:10": "superseded by b:12", "b:11": "superseded by b:12", "b:12": "in flight"},
            id="a-dead-notifier's-claim-comes-back-stale",
        ),
        pytest.param(
            "queue b:12 recovery; queue b:11 alert; claim",
            [["b:12"]],
            {"b:11": "superseded by b:12", "b:12": "in flight"},
            id="the-log's-order-decides-not-the-arrival",
        ),
        pytest.param(
            "queue b:10@ops alert; queue b:11@dev recovery; queue a:12@ops recovery; claim",
            [["a:12@ops", "b:10@ops", "b:11@dev"]],
            {"a:12@ops": "in flight", "b:10@ops": "in flight", "b:11@dev": "in flight"},
            id="other-recipients-and-tasks-apart",
        ),
        pytest.param(
            "queue agents:1 no_agent; queue agents:2 agents_back; claim",
            [["agents:2"]],
            {"agents:1": "superseded by agents:2", "agents:2": "in flight"},
            id="agents-back-supersedes-no-agent",
        ),
        pytest.param(
            "queue L1:5 location_degraded; queue L2:6 location_healthy; claim",
            [["L1:5", "L2:6"]],
            {"L1:5": "in flight", "L2:6": "in flight"},
            id="locations-apart",
        ),
        pytest.param(
            "queue t:1 test; queue t:2 test; claim",
            [["t:1", "t:2"]],
            {"t:1": "in flight", "t:2": "in flight"},
            id="test-notifications-never-stale",
        ),
    ],
)
async def test_superseding_and_claiming(database_url, steps, claims, states):
    conn = await asyncpg.connect(database_url)
    try:
        await store.ensure_schema(conn)
        assert await _play(conn, steps) == claims
        assert {r["key"]: r["state"] for r in await conn.fetch(STATE)} == states
        # Each superseded row is recorded in the log as a final failure saying why.
        recorded = {}
        for r in await store.pending_events(conn):
            ev = codec.decode(bytes(r["data"]), r["subject"])
            if isinstance(ev, NotificationFailed) and ev.final:
                recorded[ev.key] = ev.error
        assert recorded == {k: s for k, s in states.items() if s.startswith("superseded")}
    finally:
        await conn.close()


CONFIG = """
general:
  frequency: 1m
  ipv6: false
  alerts:
    ok: [webhook:ops]
    critical: [webhook:ops]
  webhooks:
    ops: {{url: "{url}/hook/ops", secret: s}}
  {channels}
websites:
  - domain: http://127.0.0.1:1
    paths:
      - {{path: /a, checks: [{{status-is: 200}}]}}
      - {{path: /b, checks: [{{status-is: 200}}]}}
"""


def _setup(tmp_path: Path, hook: HttpReceiver, channels: str = "") -> tuple[Path, dict[str, str]]:
    path = write_config(tmp_path / "c.yaml", CONFIG.format(url=hook.url, channels=channels))
    tasks = configuration.parse(str(path)).tasks
    return path, {t.url.rsplit("/", 1)[1]: tid for tid, t in tasks.items()}


async def _judge(js: Any, task: str, severity: Severity, previous: Severity) -> None:
    j = Judgement(task, severity, previous, f"{previous}→{severity}", int(severity != "ok"))
    now = time.time()
    ev = TaskJudged(at=now, group="g", completion=0, next_run=now + 60, judgements=[j])
    await js.publish(subjects.judged("g"), codec.encode(ev))


async def _settled(db: str, n: int) -> list[Any] | None:
    """The outbox's rows once there are ``n`` and each is sent or given up."""
    rows = await fetch(
        db,
        f"SELECT key, sent_at IS NOT NULL AS sent, last_error, given_up_at IS NOT NULL AS gone "
        f"FROM {store.S}.outbox ORDER BY created_at, key",
    )
    return rows if len(rows) >= n and all(r["sent"] or r["gone"] for r in rows) else None


def _told(hook: HttpReceiver) -> list[tuple[str, str]]:
    """(task, kind) of each task each call told of, in the order received."""
    out = []
    for c in hook.calls:
        body = c["json"]
        for m in body["members"] or [body]:
            out.append((m["task"], body["kind"]))
    return out


@pytest.fixture
async def hook() -> Any:
    r = await HttpReceiver().start()
    yield r
    await r.stop()


async def test_a_retried_alert_is_not_sent_after_its_recovery(
    nats_server, database_url, hook, tmp_path: Path
):
    path, ids = _setup(tmp_path, hook)
    notifier = Running(nats_server.url, database_url, path)
    # The retry would come well after the recovery: it must not come at all.
    notifier.opts.backoff = 5.0
    notifier.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    hook.failures_left = 1_000_000
    try:
        await wait_for(lambda: _consumer_ready(js), what="the notifier's durable consumer")
        await _judge(js, ids["b"], "critical", "ok")
        failed = f"SELECT key FROM {store.S}.outbox WHERE last_error IS NOT NULL"
        (alert,) = await wait_for(lambda: fetch(database_url, failed), what="a failed alert")
        hook.failures_left = 0
        await _judge(js, ids["b"], "ok", "critical")
        rows = await wait_for(lambda: _settled(database_url, 2), what="both rows settled")
        assert _told(hook) == [(ids["b"], "recovery")]
        (recovery,) = [r["key"] for r in rows if r["sent"]]
        assert {r["key"]: r["last_error"] for r in rows if r["gone"]} == {
            alert["key"]: f"superseded by {recovery}"
        }
    finally:
        await nc.close()
        await notifier.stop()


async def test_a_notifier_stopped_mid_send_leaves_no_stale_alert_for_later(
    nats_server, database_url, hook, tmp_path: Path
):
    path, ids = _setup(tmp_path, hook)
    notifier = Running(nats_server.url, database_url, path)
    notifier.opts.send_timeout = 5.0  # its lease: 10 s
    notifier.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    hook.hanging = 1
    try:
        await wait_for(lambda: _consumer_ready(js), what="the notifier's durable consumer")
        await _judge(js, ids["b"], "critical", "ok")
        await wait_for(lambda: asyncio.sleep(0, hook.hung), what="the alert at the receiver")
        await notifier.stop()
        await _judge(js, ids["b"], "ok", "critical")
        notifier.start()
        # The alert's claim holds the recovery back until its lease ends, then the alert is
        # stale: superseded, never sent after the recovery.
        rows = await wait_for(lambda: _settled(database_url, 2), what="both rows settled")
        assert [m["kind"] for m in hook.hung] == ["alert"]
        assert _told(hook) == [(ids["b"], "recovery")]
        assert [r["last_error"] or "sent" for r in rows] == [
            f"superseded by {rows[1]['key']}",
            "sent",
        ]
    finally:
        await nc.close()
        await notifier.stop()


async def test_a_task_flapping_within_a_group_window_is_listed_once_at_its_latest(
    nats_server, database_url, hook, tmp_path: Path
):
    path, ids = _setup(tmp_path, hook, "channels: {webhook:ops: {group_window: 3s}}")
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await wait_for(lambda: _consumer_ready(js), what="the notifier's durable consumer")
        await _judge(js, ids["a"], "critical", "ok")
        await _judge(js, ids["b"], "critical", "ok")
        await _judge(js, ids["b"], "ok", "critical")
        await _judge(js, ids["b"], "critical", "ok")  # and stays down
        await wait_for(lambda: _settled(database_url, 4), what="the four rows settled")
        for c in hook.calls:
            tasks = [m["task"] for m in c["json"]["members"]] or [c["json"]["task"]]
            assert len(tasks) == len(set(tasks)), c["json"]["title"]
        assert sorted(_told(hook)) == [(ids["a"], "alert"), (ids["b"], "alert")]
    finally:
        await nc.close()
        await notifier.stop()
