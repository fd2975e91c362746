"""Grouping: the window table (which notifications go out together, when), the combined
message, and end to end: three tasks of one domain failing together give one webhook call
listing them, and their recovery one more."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest

from configuration import config as configuration
from events import codec, subjects
from events.types import Judgement, Severity, TaskJudged
from services.notifier.grouping import combine, deadline, group_key
from services.notifier.message import Message, body, subject
from services.notifier.settings import NotifySettings
from tests.helpers import fetch, wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_service import Running
from tests.test_notif_webhook import _consumer_ready

S = NotifySettings(
    depends={"app1": {"db"}, "app2": {"db"}},
    task_names={"db": "https://db.example/"},
)


def _batches(arrivals: list[tuple[float, str, str, str]], window: float) -> list[str]:
    """Arrivals (time, task, domain, kind) → "due: tasks" per message, as the outbox and
    the sender group them: each arrival joins its group's open window or opens one."""
    open_until: dict[str, float] = {}
    out: dict[tuple[str, float], list[str]] = {}
    for at, task, domain, kind in arrivals:
        m = Message(
            key=task,
            kind=kind,
            severity="ok" if kind == "recovery" else "critical",
            at=at,
            task=task,
            domain=domain,
        )
        g = group_key(S, m)
        due = deadline(open_until.get(g), at, window)
        open_until[g] = due
        out.setdefault((g, due), []).append(task)
    return [
        f"{due:g} {g}: {' '.join(tasks)}"
        for (g, due), tasks in sorted(out.items(), key=lambda x: x[0][1])
    ]


@pytest.mark.parametrize(
    ("arrivals", "window", "messages"),
    [
        pytest.param(
            [(0, "a", "x.org", "alert"), (1, "b", "x.org", "alert"), (2, "c", "x.org", "alert")],
            5,
            ["5 failure|x.org: a b c"],
            id="one-domain-within-the-window",
        ),
        pytest.param(
            [(0, "a", "x.org", "alert"), (6, "b", "x.org", "alert")],
            5,
            ["5 failure|x.org: a", "11 failure|x.org: b"],
            id="after-the-window-a-new-one",
        ),
        pytest.param(
            [(0, "a", "x.org", "alert"), (1, "b", "y.org", "alert")],
            5,
            ["5 failure|x.org: a", "6 failure|y.org: b"],
            id="domains-apart",
        ),
        pytest.param(
            [(0, "app1", "a.org", "alert"), (1, "app2", "b.org", "alert")],
            5,
            ["5 failure|behind https://db.example/: app1 app2"],
            id="one-dependency-across-domains",
        ),
        pytest.param(
            [
                (0, "a", "x.org", "alert"),
                (1, "b", "x.org", "recovery"),
                (2, "c", "x.org", "recovery"),
            ],
            5,
            ["5 failure|x.org: a", "6 recovery|x.org: b c"],
            id="recoveries-grouped-apart-from-alerts",
        ),
        pytest.param(
            [(0, "a", "x.org", "alert"), (5, "b", "x.org", "alert")],
            5,
            ["5 failure|x.org: a", "10 failure|x.org: b"],
            id="window-closed-at-its-end",
        ),
    ],
)
def test_grouping_window(arrivals, window, messages):
    assert _batches(arrivals, window) == messages


def test_combined_message_lists_every_task_worst_first():
    ms = [
        Message(
            key="k1",
            kind="alert",
            severity="warning",
            at=1.0,
            task="t1",
            domain="x.org",
            url="https://x.org/a",
            check="status-is",
            ip_version=4,
            reason="slow",
        ),
        Message(
            key="k2",
            kind="alert",
            severity="critical",
            at=2.0,
            task="t2",
            domain="x.org",
            url="https://x.org/b",
            check="status-is",
            ip_version=4,
            reason="status 500",
            web_url="http://tocsin",
        ),
    ]
    m = combine(ms, "failure|x.org")
    assert (
        m.key == "k2" and m.severity == "critical" and [x.task for x in m.members] == ["t2", "t1"]
    )
    assert subject(m) == "[Tocsin] ❌ 2 tasks of x.org are now critical"
    text = body(m)
    assert "- ❌ critical https://x.org/b (status-is, IPv4): status 500" in text
    assert "- ⚠️ warning https://x.org/a (status-is, IPv4): slow" in text
    assert combine(ms[:1], "failure|x.org") is ms[0]


CONFIG = """
general:
  frequency: 1m
  ipv6: false
  alerts:
    ok: [webhook:ops]
    critical: [webhook:ops]
  webhooks:
    ops: {{url: "{url}/hook/ops", secret: s}}
  channels:
    webhook:ops:
      group_window: 2s
websites:
  - domain: http://127.0.0.1:1
    paths:
      - {{path: /a, checks: [{{status-is: 200}}]}}
      - {{path: /b, checks: [{{status-is: 200}}]}}
      - {{path: /c, checks: [{{status-is: 200}}]}}
"""


async def test_many_tasks_of_one_domain_make_one_alert_and_one_recovery(
    nats_server, database_url, tmp_path: Path
):
    hook = await HttpReceiver().start()
    path = write_config(tmp_path / "c.yaml", CONFIG.format(url=hook.url))
    tasks = sorted(configuration.parse(str(path)).tasks)
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()

    async def judge(sev: Severity, previous: Severity) -> None:
        for t in tasks:
            j = Judgement(t, sev, previous, "r", 0 if sev == "ok" else 1)
            now = time.time()
            ev = TaskJudged(at=now, group="g", completion=0, next_run=now + 60, judgements=[j])
            await js.publish(subjects.judged("g"), codec.encode(ev))

    try:
        await wait_for(lambda: _consumer_ready(js), what="the notifier's durable consumer")
        await judge("critical", "ok")
        await wait_for(lambda: asyncio.sleep(0, len(hook.calls) >= 1), what="the grouped alert")
        await judge("ok", "critical")
        await wait_for(lambda: asyncio.sleep(0, len(hook.calls) >= 2), what="the grouped recovery")
        await asyncio.sleep(2.5)
        assert len(hook.calls) == 2
        alert, recovery = (c["json"] for c in hook.calls)
        assert alert["kind"] == "alert" and len(alert["members"]) == 3
        assert {m["task"] for m in alert["members"]} == set(tasks)
        assert alert["title"].startswith("❌ 3 tasks of 127.0.0.1:1 are now critical")
        assert recovery["kind"] == "recovery" and len(recovery["members"]) == 3
        # The log still says, per task, who was told.
        rows = await wait_for(
            lambda: _sent(database_url, 6), what="six notification.sent rows in the outbox"
        )
        assert len(rows) == 6
    finally:
        await nc.close()
        await notifier.stop()
        await hook.stop()


async def _sent(db: str, n: int):  # type: ignore[no-untyped-def]
    rows = await fetch(db, "SELECT key FROM tocsin_notifier.outbox WHERE sent_at IS NOT NULL")
    return rows if len(rows) >= n else None
