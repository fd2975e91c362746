"""What-if replay: the comparison table, and end to end: a recorded week of one task
(real completions and judgements in the log, real notifications sent by the real notifier
with retry_before_notification 0) replayed with retry_before_notification 2 lists exactly
the notifications the table predicts, and writes nothing to the log."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import nats
import pytest

from checks.judge import GroupState, TaskState, apply, judge
from configuration import config as configuration
from events import codec, streams, subjects
from events.types import CheckCompleted, CheckOutcome, Observation, TaskDef
from runtime import bus
from services.cli import main as tocsin
from services.notifier import whatif
from services.notifier.settings import NotifySettings, Target
from services.notifier.simulate import Decision
from services.notifier.whatif import compare
from tests.helpers import wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_service import Running
from tests.test_notif_webhook import _consumer_ready


def _d(at: float, kind: str = "alert", severity: str = "critical") -> Decision:
    return Decision(0, at, "t", "mail", kind, severity, None)


@pytest.mark.parametrize(
    ("actual", "proposed", "rows"),
    [
        pytest.param([_d(10)], [_d(10.5)], ["same 10 10.5"], id="same-within-a-second"),
        pytest.param([_d(10)], [], ["not sent 10 -"], id="not-sent"),
        pytest.param([], [_d(10)], ["would be sent - 10"], id="would-be-sent"),
        pytest.param([_d(10)], [_d(30)], ["moved 10 30"], id="moved"),
        pytest.param(
            [_d(1), _d(3), _d(6)],
            [_d(8)],
            ["not sent 1 -", "not sent 3 -", "moved 6 8"],
            id="later-alert-pairs-with-the-nearest",
        ),
        pytest.param(
            [_d(10)],
            [_d(10, "alert", "warning")],
            ["not sent 10 -", "would be sent - 10"],
            id="another-severity-is-another-notification",
        ),
    ],
)
def test_compare(actual, proposed, rows):
    def t(x: float | None) -> str:
        return "-" if x is None else f"{x:g}"

    got = [f"{r.verdict} {t(r.actual_at)} {t(r.proposed_at)}" for r in compare(actual, proposed)]
    assert got == rows


CONFIG = """
general:
  frequency: 1h
  ipv6: false
  retry_before_notification: {retry}
  alerts:
    ok: [webhook:ops]
    critical: [webhook:ops]
  webhooks:
    ops: {{url: "{url}/hook/ops", secret: s}}
websites:
  - domain: http://127.0.0.1:1
    paths:
      - path: /x
        checks:
          - status-is: 200
"""
#: One result an hour over the recorded week: s(uccess) or f(ailure).
WEEK = "sfsffsfffs"


async def test_replay_with_another_retry_lists_the_predicted_notifications(
    nats_server, database_url, tmp_path: Path, capsys
):
    hook = await HttpReceiver().start()
    recorded = write_config(tmp_path / "now.yaml", CONFIG.format(retry=0, url=hook.url))
    proposed = write_config(tmp_path / "proposed.yaml", CONFIG.format(retry=2, url=hook.url))
    cfg = configuration.parse(str(recorded))
    (task,) = cfg.tasks.values()
    notifier = Running(nats_server.url, database_url, recorded)
    notifier.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    t0 = time.time() - 6 * 86400
    try:
        await wait_for(lambda: _consumer_ready(js), what="the notifier's durable consumer")
        states: dict[str, TaskState] = {}
        told = 0
        for k, result in enumerate(WEEK):
            at = t0 + k * 3600
            done = CheckCompleted(
                at=at,
                request=f"r{k}",
                group=task.group,
                agent="a1",
                location="default",
                started=at - 1,
                observation=Observation(status=200 if result == "s" else 500),
                outcomes=[
                    CheckOutcome(
                        task=task.id,
                        kind="status-is",
                        status="success" if result == "s" else "failure",
                        detail="status 200" if result == "s" else "status 500",
                    )
                ],
            )
            ack = await js.publish(
                subjects.completed("a1", "default", task.group), codec.encode(done)
            )
            # The scheduler's verdict, by the scheduler's pure judge.
            verdict = judge([task], states, GroupState(), done, ack.seq, cfg.ssl_thresholds)
            apply(states, verdict)
            await js.publish(subjects.judged(task.group), codec.encode(verdict))
            # retry 0: alert on each first failure, recovery on each success after one. Each
            # hour's is out before the next hour is judged, as over a real week (a change a
            # newer one makes stale before it is sent is superseded).
            told += sum(j.severity != (j.previous or "ok") for j in verdict.judgements)
            await wait_for(
                lambda n=told: asyncio.sleep(0, len(hook.calls) == n), what=f"hour {k}'s send"
            )
        assert len(hook.calls) == 6
        await wait_for(lambda: _sent_events(js, 6), what="the sends recorded in the log")
        await notifier.stop()  # before reading the end: it could still publish until then
        last = (await js.stream_info(streams.EVENTS)).state.last_seq
        capsys.readouterr()
        argv = ["replay", "--config", str(proposed), "--since", "7d", "--nats-url", nats_server.url]
        assert await asyncio.to_thread(tocsin, argv) == 0
        out = capsys.readouterr().out.splitlines()
        assert (await js.stream_info(streams.EVENTS)).state.last_seq == last  # wrote nothing
    finally:
        await nc.close()
        await notifier.stop()
        await hook.stop()

    def hour(k: int) -> str:
        return dt.datetime.fromtimestamp(t0 + k * 3600, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

    rows = [line for line in out[1:] if line[:4].isdigit()]
    table = [(line[:19], line.split("  ")[-1].strip(), "webhook:ops" in line) for line in rows]
    # retry 2: only the three failures in a row (hours 6-8) alert, at hour 8; hour 9 recovers.
    assert table == [
        (hour(1), "— (not sent)", True),
        (hour(2), "— (not sent)", True),
        (hour(3), "— (not sent)", True),
        (hour(5), "— (not sent)", True),
        (hour(6), f"alert critical at {hour(8)}", True),
        (hour(9), "recovery ok", True),
    ]
    assert out[-1] == "6 sent, 2 with the proposal: 1 same, 4 not sent, 0 would be sent, 1 moved"


async def _sent_events(js, n: int) -> bool:  # type: ignore[no-untyped-def]
    count = 0
    async for _ in bus.replay(js, subjects.notification("sent")):
        count += 1
    return count >= n


def _completion(k: int, location: str, ok: bool) -> CheckCompleted:
    at = 1.7e9 + k
    return CheckCompleted(
        at=at,
        request=f"r{k}{location}",
        group="g",
        agent=f"{location}-1",
        location=location,
        started=at,
        observation=Observation(status=200 if ok else 500),
        outcomes=[
            CheckOutcome(
                task="t", kind="status-is", status="success" if ok else "failure", detail="d"
            )
        ],
    )


@pytest.mark.parametrize(
    ("quorum", "sent"),
    [
        pytest.param(None, ["alert warning"], id="majority-of-two-warns"),
        pytest.param(1, ["alert critical"], id="quorum-one-is-critical"),
    ],
)
def test_replay_combines_locations_with_the_proposed_quorum(quorum, sent):
    task = TaskDef(
        id="t",
        group="g",
        domain="x.org",
        url="https://x.org/",
        method="GET",
        ip_version=4,
        check="status-is",
        expected=200,
        frequency=60.0,
        locations=["eu", "us"],
    )
    s = NotifySettings(
        alerts={sev: [Target("local")] for sev in ("warning", "critical")}, tasks={"t": task}
    )
    events: list[tuple[int, object]] = [
        (1, _completion(1, "eu", True)),
        (2, _completion(2, "us", False)),
        (3, _completion(3, "eu", True)),
    ]
    result = whatif.run(s, [], events, since=0.0, quorum=lambda domain: quorum)
    assert [f"{d.kind} {d.severity}" for d in result.proposed] == sent
    assert result.skipped == {}
