"""Acknowledgements: the decision table (reminders and escalation stop until the severity
changes or the task recovers), and each way in (web button via htmx, API, CLI) recording
who and why in the log, against real NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import time

import asyncpg
import httpx
import msgspec
import nats
import pytest

from configuration import config as configuration
from events import codec, streams, subjects
from events.types import ConfigApplied, IncidentAcknowledged, Judgement, Severity, TaskJudged
from runtime import bus
from services.cli import main as tocsin
from services.notifier.settings import NotifySettings, Target
from services.notifier.simulate import Simulation
from services.web import authdb
from services.web.settings import WebSettings
from tests.helpers import wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_service import Running
from tests.test_notif_webhook import _consumer_ready
from tests.test_web_pages import login
from tests.web_fixtures import Seeder, add_user, task_def, web_server

T = "t1"


def _settings() -> NotifySettings:
    pager = [Target("local"), Target("webhook:pager", after=3)]
    return NotifySettings(
        alerts={"critical": pager, "warning": pager, "ok": [Target("local")]},
        reminder_interval=10.0,
    )


def _run(steps: list[tuple[float, str, str]]) -> list[str]:
    """Steps: (time, "ack", who) or (time, severity, consecutive failures as text)."""
    sim = Simulation(_settings())
    last: Severity = "ok"
    out = []
    for seq, (at, what, arg) in enumerate(steps, 1):
        if what == "ack":
            sim.apply(seq, IncidentAcknowledged(at=at, task=T, by=arg, reason="on it"))
            continue
        sev: Severity = what  # type: ignore[assignment]
        j = Judgement(T, sev, last, "r", int(arg))
        last = sev
        out += [f"{at:g} {d.channel} {d.kind} {d.severity}" for d in sim.judge(seq, at, j)]
    return out


@pytest.mark.parametrize(
    ("steps", "sent"),
    [
        pytest.param(
            [
                (0, "critical", "1"),
                (5, "critical", "2"),
                (10, "critical", "3"),
                (20, "critical", "4"),
            ],
            [
                "0 local alert critical",
                "10 local reminder critical",
                "10 webhook:pager alert critical",
                "20 local reminder critical",
                "20 webhook:pager reminder critical",
            ],
            id="unacknowledged-reminds-and-escalates",
        ),
        pytest.param(
            [
                (0, "critical", "1"),
                (2, "ack", "alice"),
                (10, "critical", "3"),
                (20, "critical", "4"),
            ],
            ["0 local alert critical"],
            id="ack-stops-reminders-and-escalation",
        ),
        pytest.param(
            [(0, "critical", "1"), (2, "ack", "alice"), (10, "warning", "2"), (20, "warning", "3")],
            [
                "0 local alert critical",
                "10 local alert warning",
                "20 local reminder warning",
                "20 webhook:pager alert warning",
            ],
            id="severity-change-ends-the-ack",
        ),
        pytest.param(
            [(0, "critical", "1"), (2, "ack", "alice"), (5, "ok", "0"), (8, "critical", "1")],
            ["0 local alert critical", "5 local recovery ok", "8 local alert critical"],
            id="recovery-ends-the-ack",
        ),
        pytest.param(
            [(0, "ok", "0"), (1, "ack", "alice"), (2, "critical", "1"), (12, "critical", "2")],
            ["2 local alert critical", "12 local reminder critical"],
            id="ack-before-the-failure-covers-nothing",
        ),
        pytest.param(
            [(0, "critical", "1"), (1, "ack", "alice"), (2, "ok", "0")],
            ["0 local alert critical", "2 local recovery ok"],
            id="acknowledged-recovery-still-goes-out",
        ),
    ],
)
def test_acknowledgement_decisions(steps, sent):
    assert _run(steps) == sent


async def _acks(nats_url: str) -> list[IncidentAcknowledged]:
    nc = await nats.connect(nats_url)
    try:
        out = []
        async for msg in bus.replay(nc.jetstream(), subjects.ACKNOWLEDGED):
            ev = codec.decode(msg.data, msg.subject)
            assert isinstance(ev, IncidentAcknowledged)
            out.append(ev)
        return out
    finally:
        await nc.close()


async def test_web_button_api_and_cli_record_who_and_why(nats_server, database_url):
    now = time.time()
    # Ids and groups the event contract admits (no dot): the log below holds them.
    bad = msgspec.structs.replace(task_def(1, "bad.example"), id="t1-bad", group="g1-bad")
    fine = msgspec.structs.replace(task_def(2, "fine.example"), id="t2-fine", group="g2-fine")
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), [])
    # In force in the log too: `tocsin ack` refuses a task that is not.
    applied = ConfigApplied(
        at=now - 60, revision="r1", source="test", applied_by="test", added=[bad, fine]
    )
    await nc.jetstream().publish(subjects.CONFIG_APPLIED, codec.encode(applied))
    await nc.close()
    s = Seeder(database_url)
    s.config([bad, fine], at=now - 60)
    s.judge(bad, "critical", "ok", now - 30)
    s.judge(fine, "ok", None, now - 30)
    await s.flush()
    await add_user(database_url, "alice", "pw-alice")
    conn = await asyncpg.connect(database_url)
    token = await authdb.create_token(conn, "ci", "write")
    await conn.close()
    settings = WebSettings(unauthenticated_access="all", nats_url=nats_server.url)
    async with web_server(database_url, settings) as web:
        async with httpx.AsyncClient(base_url=web.url) as anon:
            page = (await anon.get(f"/tasks/{bad.id}")).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert csrf
            # Reading is open to all; acknowledging names someone.
            refused = await anon.post(
                f"/tasks/{bad.id}/acknowledge",
                data={"reason": "x", "csrf_token": csrf.group(1)},
                headers={"HX-Request": "true"},
            )
            assert refused.status_code == 401
            assert (
                await anon.post(f"/api/tasks/{bad.id}/acknowledge", json={"reason": "x"})
            ).status_code == 401
        async with httpx.AsyncClient(base_url=web.url) as c:
            await login(c, "alice", "pw-alice")
            page = (await c.get(f"/tasks/{bad.id}")).text
            form = re.search(r'<form id="ack".*?</form>', page, re.S)
            assert form and f'hx-post="/tasks/{bad.id}/acknowledge"' in form.group(
                0
            )  # no root_path
            assert "<script" not in form.group(0) and " on" not in form.group(0).replace(
                " only", ""
            )
            assert '<form id="ack"' not in (await c.get(f"/tasks/{fine.id}")).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.group(0))
            assert csrf
            forged = await c.post(
                f"/tasks/{bad.id}/acknowledge",
                data={"reason": "x", "csrf_token": "forged"},
                headers={"HX-Request": "true"},
            )
            assert forged.status_code == 403
            got = await c.post(
                f"/tasks/{bad.id}/acknowledge",
                data={"reason": "restarting <db>", "csrf_token": csrf.group(1)},
                headers={"HX-Request": "true"},
            )
            assert got.status_code == 200
            assert "Acknowledged by alice: restarting &lt;db&gt;" in got.text
            ok_task = await c.post(
                f"/tasks/{fine.id}/acknowledge",
                data={"reason": "x", "csrf_token": csrf.group(1)},
                headers={"HX-Request": "true"},
            )
            assert ok_task.status_code == 409
        async with httpx.AsyncClient(
            base_url=web.url, headers={"Authorization": f"Bearer {token}"}
        ) as api:
            r = await api.post(f"/api/tasks/{bad.id}/acknowledge", json={"reason": "paged"})
            assert r.status_code == 200 and r.json()["by"] == "token:ci"
            assert (
                await api.post(f"/api/tasks/{bad.id}/acknowledge", json={"reason": ""})
            ).status_code == 422
            assert (
                await api.post("/api/tasks/nope/acknowledge", json={"reason": "x"})
            ).status_code == 404
    cli = ["ack", bad.id, "--nats-url", nats_server.url, "--reason"]
    assert await asyncio.to_thread(tocsin, [*cli, "from the shell"]) == 0
    assert await asyncio.to_thread(tocsin, [*cli, " "]) == 2
    acks = await _acks(nats_server.url)
    assert [(a.task, a.by, a.reason, a.severity) for a in acks[:2]] == [
        (bad.id, "alice", "restarting <db>", "critical"),
        (bad.id, "token:ci", "paged", "critical"),
    ]
    assert acks[2].task == bad.id and acks[2].reason == "from the shell" and "@" in acks[2].by
    assert len(acks) == 3


CONFIG = """
general:
  frequency: 1m
  ipv6: false
  reminder_interval: 10s
  alerts:
    critical: [webhook:ops]
    warning: [webhook:ops]
  webhooks:
    ops: {{url: "{url}/hook/ops", secret: s}}
websites:
  - domain: http://127.0.0.1:1
    paths:
      - path: /
        checks:
          - status-is: 200
"""


async def test_the_notifier_follows_acknowledgements_from_the_log(
    nats_server, database_url, tmp_path
):
    hook = await HttpReceiver().start()
    path = write_config(tmp_path / "c.yaml", CONFIG.format(url=hook.url))
    (task,) = configuration.parse(str(path)).tasks
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    t0 = time.time()
    previous: list[Severity] = ["ok"]

    async def judged(dt: float, sev: Severity, failures: int, calls: int) -> None:
        j = Judgement(task, sev, previous[0], "r", failures)
        previous[0] = sev
        ev = TaskJudged(at=t0 + dt, group="g", completion=0, next_run=t0 + 60, judgements=[j])
        await js.publish(subjects.judged("g"), codec.encode(ev))
        await wait_for(lambda: asyncio.sleep(0, len(hook.calls) >= calls), what=f"{calls} sends")

    try:
        await wait_for(lambda: _consumer_ready(js), what="the notifier's durable consumer")
        await judged(0, "critical", 1, 1)
        await judged(20, "critical", 2, 2)
        await js.publish(
            subjects.ACKNOWLEDGED,
            codec.encode(IncidentAcknowledged(at=t0 + 25, task=task, by="bob", reason="mine")),
        )
        assert notifier.notifier is not None
        acks = notifier.notifier.acks
        await wait_for(lambda: asyncio.sleep(0, task in acks), what="the ack followed")
        await judged(40, "critical", 3, 2)
        await judged(50, "warning", 4, 3)
        kinds = [(c["json"]["kind"], c["json"]["severity"]) for c in hook.calls]
        assert kinds == [("alert", "critical"), ("reminder", "critical"), ("alert", "warning")]
    finally:
        await nc.close()
        await notifier.stop()
        await hook.stop()
