"""A task removed from the configuration while not ok (its check changed: a new id) leaves no
alert standing: the pure decision as tables, the read model's incidents (the projector's
fold and writers on real PostgreSQL), and end to end: the notifier tells whoever got the
alert that it is no longer monitored, once (real NATS and PostgreSQL, a local webhook)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from checks import hostjudge
from configuration import config as configuration
from configuration.inforce import apply_config
from events.types import ConfigApplied
from readmodel import SCHEMA
from services.notifier import store
from services.notifier.decide import Told
from services.notifier.message import Message, subject
from services.notifier.retire import REASON, farewells, gone
from services.web import queries
from tests.helpers import fetch, wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_order import _judge
from tests.test_notif_service import Running
from tests.test_notif_webhook import _consumer_ready
from tests.web_fixtures import Seeder, task_def


@pytest.mark.parametrize(
    ("told", "retired"),
    [
        pytest.param({"b-old": "g1"}, ["b-old"], id="dropped-by-the-configuration"),
        pytest.param({"a": "g1"}, [], id="still-in-force"),
        pytest.param({"h1": hostjudge.group("web1")}, [], id="a-host's-task-is-not-the-file's"),
        pytest.param({"b-old": None}, [], id="group-not-recorded-yet-waits"),
    ],
)
def test_which_tasks_are_gone(told, retired):
    assert gone(told, {"a", "b-new"}) == retired


def _m(kind: str, severity: str) -> Message:
    return Message(
        key="k",
        kind=kind,
        severity=severity,
        at=1.0,
        task="b",
        domain="x.org",
        url="https://x.org/b",
        check="status-is",
        ip_version=4,
        failures=3,
        source_seq=10,
    )


@pytest.mark.parametrize(
    ("told", "last", "sent"),
    [
        pytest.param(
            {"mail": Told("critical", 1.0)},
            [("mail", "ops@x", _m("alert", "critical"))],
            ["b:20:removed:0 mail ops@x critical"],
            id="whoever-got-the-alert",
        ),
        pytest.param(
            {"mail": Told("warning", 1.0), "webhook:ops": Told("critical", 1.0)},
            [
                ("webhook:ops", "hook", _m("reminder", "critical")),
                ("mail", "ops@x", _m("alert", "warning")),
            ],
            ["b:20:removed:0 mail ops@x warning", "b:20:removed:1 webhook:ops hook critical"],
            id="each-channel-its-own-last-severity",
        ),
        pytest.param(
            {"mail": Told("critical", 1.0)},
            [("mail", "ops@x", _m("recovery", "ok"))],
            [],
            id="last-told-it-recovered",
        ),
        pytest.param(
            {"mail": Told("critical", 1.0)},
            [("gotify", "tok", _m("alert", "critical"))],
            [],
            id="a-channel-of-an-earlier-episode",
        ),
    ],
)
def test_who_is_told_it_is_no_longer_monitored(told, last, sent):
    out = farewells("b", told, last, 20, 5.0, "http://tocsin")
    assert [f"{k} {c} {r} {m.previous}" for k, c, r, m in out] == sent
    for _, _, _, m in out:
        assert (m.kind, m.severity, m.reason, m.source_seq) == ("removed", "ok", REASON, 20)
        assert subject(m) == "[Tocsin] ✅ https://x.org/b (status-is, IPv4) is no longer monitored"


T1, T2 = task_def(1), task_def(2)


def _removed(task: str, at: float) -> ConfigApplied:
    return ConfigApplied(
        at=at, revision="r2", source="test.yaml", applied_by="tester", removed=[task]
    )


@pytest.mark.parametrize(
    ("steps", "changes"),
    [
        pytest.param(
            ["critical t1", "flush", "remove t1"],
            ["2 ok→critical", "3 critical→ok removed"],
            id="removed-while-critical-ends-its-incident",
        ),
        pytest.param(
            ["critical t1", "remove t1"],
            ["2 ok→critical", "3 critical→ok removed"],
            id="judged-and-removed-in-one-batch",
        ),
        pytest.param(
            ["critical t1", "ok t1", "flush", "remove t1"],
            ["2 ok→critical", "3 critical→ok"],
            id="removed-once-recovered-adds-nothing",
        ),
        pytest.param(["remove t1"], [], id="never-judged-adds-nothing"),
        pytest.param(
            ["critical t1", "critical t2", "flush", "remove t1"],
            ["2 ok→critical", "4 critical→ok removed"],
            id="the-others-stay-open",
        ),
    ],
)
async def test_a_removal_ends_the_incident_in_the_read_model(database_url, steps, changes):
    s = Seeder(database_url)
    s.config([T1, T2], at=1000.0)
    previous = {T1.id: "ok", T2.id: "ok"}
    for k, step in enumerate(steps):
        verb, *what = step.split()
        at = 2000.0 + k
        if verb == "flush":
            await s.flush()
        elif verb == "remove":
            s.add(_removed(task_def(int(what[0][1])).id, at))
        else:
            t = task_def(int(what[0][1]))
            s.judge(t, verb, previous[t.id], at)
            previous[t.id] = verb
    await s.flush()
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        rows = await conn.fetch(
            "SELECT seq, previous, severity, reason FROM severity_changes WHERE task_id = $1 "
            "ORDER BY seq",
            T1.id,
        )
        assert [
            f"{r['seq']} {r['previous']}→{r['severity']}"
            + (" removed" if "removed from the configuration" in r["reason"] else "")
            for r in rows
        ] == changes
        incidents = {i["task_id"]: i for i in await queries.incidents(conn)}
    finally:
        await conn.close()
    if changes:
        assert incidents[T1.id]["end"] is not None  # no incident of t1 is left open
    if T2.id in incidents:
        assert incidents[T2.id]["end"] is None


CONFIG = """
general:
  frequency: 1m
  ipv6: false
  alerts:
    ok: [webhook:ops]
    critical: [webhook:ops]
  webhooks:
    ops: {{url: "{url}/hook/ops", secret: s}}
websites:
  - domain: http://127.0.0.1:1
    paths:
      - {{path: /a, checks: [{{status-is: 200}}]}}
      - {{path: /b, checks: [{{{check}}}]}}
"""


def _ids(path: Path) -> dict[str, str]:
    tasks = configuration.parse(str(path)).tasks
    return {t.url.rsplit("/", 1)[1]: tid for tid, t in tasks.items()}


async def test_a_task_removed_while_failing_is_told_no_longer_monitored_once(
    nats_server, database_url, tmp_path: Path
):
    hook = await HttpReceiver().start()
    before = write_config(tmp_path / "c.yaml", CONFIG.format(url=hook.url, check="status-is: 200"))
    after = write_config(
        tmp_path / "d.yaml", CONFIG.format(url=hook.url, check="status-in: [200, 503]")
    )
    old, new = _ids(before), _ids(after)
    assert old["b"] != new["b"] and old["a"] == new["a"]  # the changed check: a new task
    notifier = Running(nats_server.url, database_url, before)
    notifier.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()

    async def calls(n: int) -> list[dict[str, Any]] | None:
        await asyncio.sleep(0)
        return [c["json"] for c in hook.calls] if len(hook.calls) >= n else None

    try:
        await wait_for(lambda: _consumer_ready(js), what="the notifier's durable consumer")
        await apply_config(js, configuration.parse(str(before)), "tester")
        await _judge(js, old["b"], "critical", "ok")
        await wait_for(lambda: calls(1), what="the alert")
        await apply_config(js, configuration.parse(str(after)), "tester")
        got = await wait_for(lambda: calls(2), what="the no longer monitored notification")
        bye = got[1]
        assert (bye["kind"], bye["task"], bye["severity"], bye["previous"]) == (
            "removed",
            old["b"],
            "ok",
            "critical",
        )
        assert bye["title"] == "✅ http://127.0.0.1:1/b (status-is, IPv4) is no longer monitored"
        # Once: its episode is closed, so a restarted notifier (which retires again when it
        # starts) tells nothing more.
        await notifier.stop()
        notifier.start()
        await _judge(js, old["a"], "critical", "ok")
        got = await wait_for(lambda: calls(3), what="the next alert")
        assert [(c["kind"], c["task"]) for c in got] == [
            ("alert", old["b"]),
            ("removed", old["b"]),
            ("alert", old["a"]),
        ]
        (state,) = await fetch(
            database_url,
            f"SELECT told, severity FROM {store.S}.task_state WHERE task = $1",
            old["b"],
        )
        assert (state["told"], state["severity"]) == ("{}", "ok")
    finally:
        await nc.close()
        await notifier.stop()
        await hook.stop()
