"""The webhook channel against a real HTTP receiver (body, HMAC signature, failures without
secrets), and per-channel rate limits: a table of the pure decision, then a flapping task
end to end through the notifier (real NATS and PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from configuration import config as configuration
from events import codec, streams, subjects
from events.types import Judgement, Severity, TaskJudged
from services.notifier import channels, settings
from services.notifier.channels import SendError, webhook
from services.notifier.ratelimit import RateLimit, wait
from services.notifier.settings import NotifySettings
from tests.helpers import fetch, wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_channels import MSG
from tests.test_notif_service import Running

SECRET = "s3cret-for-hmac"


@pytest.fixture
async def http() -> AsyncIterator[HttpReceiver]:
    r = await HttpReceiver().start()
    yield r
    await r.stop()


def _verify(call: dict, secret: str) -> bool:
    stamp = call["headers"][webhook.TIMESTAMP]
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + call["raw"], hashlib.sha256)
    return hmac.compare_digest(call["headers"][webhook.SIGNATURE], "sha256=" + mac.hexdigest())


@pytest.mark.parametrize(
    ("fail", "path", "error"),
    [
        pytest.param(0, "/hook/ops", None, id="delivered-and-signed"),
        pytest.param(1, "/hook/ops", "answered 500", id="receiver-error"),
        pytest.param(0, None, "ClientConnectorError", id="nobody-listening"),
    ],
)
async def test_webhook(http, fail, path, error):
    http.failures_left = fail
    url = f"{http.url}/hook/ops?token=tok-in-url" if path else "http://127.0.0.1:1/hook/tok-in-url"
    s = NotifySettings(webhooks={"ops": {"url": url, "secret": SECRET}})
    (to,) = channels.recipients(s, "webhook:ops", "example.org")
    assert "tok-in-url" not in to.label and to.label.startswith("webhook ops (http://127.0.0.1:")
    if error:
        with pytest.raises(SendError, match=error) as exc:
            await channels.send(s, "webhook:ops", to, MSG)
        assert "tok-in-url" not in str(exc.value) and SECRET not in str(exc.value)
        return
    await channels.send(s, "webhook:ops", to, MSG)
    (call,) = http.on(path)
    assert _verify(call, SECRET)
    assert not _verify(call, "another secret")
    assert abs(int(call["headers"][webhook.TIMESTAMP]) - time.time()) < 3600
    body = call["json"]
    assert body["version"] == 1 and body["kind"] == "alert" and body["severity"] == "critical"
    assert body["previous"] == "ok" and body["task"] == "t1" and body["domain"] == "example.org"
    assert body["reason"] == "status 500" and body["failures"] == 3
    assert body["links"] == {
        "task": "http://tocsin.local/tasks/t1",
        "results": "http://tocsin.local/tasks/t1#results",
        "judgement": "http://tocsin.local/tasks/t1#incidents",
    }
    assert "example.org" in body["title"] and "status 500" in body["text"]
    assert body["at_iso"] == "1970-01-01T00:00:00+00:00"


def test_webhook_unknown_name_has_no_recipient():
    assert channels.recipients(NotifySettings(), "webhook:nope", None) == []


@pytest.mark.parametrize(
    ("sent", "now", "limit", "ahead", "expected"),
    [
        pytest.param([], 100.0, RateLimit(2, 60), 0, 0.0, id="nothing-sent"),
        pytest.param([90.0], 100.0, RateLimit(2, 60), 0, 0.0, id="under-the-limit"),
        pytest.param([50.0, 90.0], 100.0, RateLimit(2, 60), 0, 10.0, id="full-waits-for-oldest"),
        pytest.param([10.0, 90.0], 100.0, RateLimit(2, 60), 0, 0.0, id="oldest-left-the-window"),
        pytest.param([70.0, 80.0, 90.0], 100.0, RateLimit(2, 60), 0, 40.0, id="over-full"),
        pytest.param([40.0], 100.0, RateLimit(1, 60), 0, 0.0, id="window-edge-is-free"),
        pytest.param([99.0], 100.0, RateLimit(1, 3600), 0, 3599.0, id="one-per-hour"),
        pytest.param([], 100.0, RateLimit(2, 60), 1, 0.0, id="one-older-waiting-fits"),
        pytest.param([100.5], 100.0, RateLimit(1, 60), 0, 60.5, id="stamped-after-now-counts"),
        pytest.param([], 100.0, RateLimit(2, 60), 2, 60.0, id="older-ones-go-first"),
        pytest.param([90.0], 100.0, RateLimit(2, 60), 1, 50.0, id="sent-and-waiting"),
    ],
)
def test_rate_limit_wait(sent, now, limit, ahead, expected):
    assert wait(sent, now, limit, ahead) == pytest.approx(expected)


CONFIG = """
general:
  frequency: 1m
  ipv6: false
  alerts:
    ok: [webhook:ops]
    critical: [webhook:ops]
  webhooks:
    ops: {{url: "{url}/hook/ops", secret: "{secret}"}}
  channels:
    webhook:ops:
      rate_limit: {{count: 2, per: {per}}}
websites:
  - domain: http://127.0.0.1:1
    paths:
      - path: /flapping
        checks:
          - status-is: 200
"""


async def test_a_flapping_task_costs_the_receiver_the_limit_and_ends_on_its_latest_state(
    nats_server, database_url, http, tmp_path: Path
):
    path = write_config(tmp_path / "c.yaml", CONFIG.format(url=http.url, secret=SECRET, per="4s"))
    (task,) = configuration.parse(str(path)).tasks
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await wait_for(lambda: _consumer_ready(js), what="the notifier's durable consumer")
        # Six changes: alert, recovery, alert, recovery, alert, recovery. The first two are
        # sent as they come (the limit lets two through); the next four come together.
        severities: list[Severity] = ["critical", "ok"] * 3
        previous: Severity = "ok"
        for i, sev in enumerate(severities):
            j = Judgement(
                task=task,
                severity=sev,
                previous=previous,
                reason=f"change {i}",
                failures=1 if sev != "ok" else 0,
            )
            ev = TaskJudged(
                at=time.time(), group="g", completion=0, next_run=time.time() + 60, judgements=[j]
            )
            await js.publish(subjects.judged("g"), codec.encode(ev))
            previous = sev
            if i < 2:
                await wait_for(
                    lambda n=i + 1: asyncio.sleep(0, len(http.calls) == n), what=f"send {i}"
                )
        # The limit holds the third back; each newer change supersedes the one waiting; the
        # latest goes out when the window frees.
        await wait_for(lambda: asyncio.sleep(0, len(http.calls) == 3), what="three sends")
        got = [(c["json"]["kind"], c["json"]["reason"]) for c in http.calls]
        assert got == [("alert", "change 0"), ("recovery", "change 1"), ("recovery", "change 5")]
        rows = await wait_for(lambda: _superseded(database_url, 3), what="superseded rows")
        assert all(r["last_error"].startswith(f"superseded by {task}:") for r in rows)
        await asyncio.sleep(1)
        assert len(http.calls) == 3
    finally:
        await nc.close()
        await notifier.stop()


async def _consumer_ready(js) -> bool:  # type: ignore[no-untyped-def]
    try:
        await js.consumer_info(streams.EVENTS, streams.NOTIFIER)
    except nats.js.errors.NotFoundError:
        return False
    return True


async def _superseded(db: str, n: int):  # type: ignore[no-untyped-def]
    rows = await fetch(
        db, "SELECT * FROM tocsin_notifier.outbox WHERE given_up_at IS NOT NULL ORDER BY key"
    )
    return rows if len(rows) >= n else None


CHECKED = """general:
  frequency: 1m
  alerts:
    critical: [{alert}]
  webhooks:
    ops: {hook}
  channels:
    {tuned}: {tuning}
websites:
  - domain: http://127.0.0.1:1
    paths:
      - path: /
        checks:
          - status-is: 200
"""
GOOD = {
    "alert": "webhook:ops",
    "hook": '{url: "https://hooks.example.org/x", secret: "k"}',
    "tuned": "webhook:ops",
    "tuning": "{rate_limit: {count: 10, per: 1h}}",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"alert": "webhook:dev"},
            "c.yaml:4:16: general.alerts.critical[0]: unknown webhook 'dev'",
            id="unknown-webhook-in-alerts",
        ),
        pytest.param(
            {"hook": '{url: "https://x"}'},
            "c.yaml:6:10: general.webhooks.ops.secret: required key is missing",
            id="no-secret",
        ),
        pytest.param(
            {"hook": '{url: "ftp://x", secret: k}'},
            "general.webhooks.ops.url: expected an http:// or https:// URL",
            id="not-http",
        ),
        pytest.param(
            {"tuned": "webhook:dev"},
            "c.yaml:8:5: general.channels.webhook:dev: unknown webhook",
            id="tuning-unknown",
        ),
        pytest.param(
            {"tuning": "{rate_limit: {count: 0, per: 1h}}"},
            "general.channels.webhook:ops.rate_limit.count: expected a whole number from 1",
            id="zero-count",
        ),
        pytest.param(
            {"tuning": "{rate_limit: {count: 3}}"},
            "general.channels.webhook:ops.rate_limit",
            id="no-window",
        ),
        pytest.param({"tuning": "{rate: 3}"}, "unknown key", id="unknown-tuning-key"),
    ],
)
def test_configuration_refuses(tmp_path, change, message):
    path = write_config(tmp_path / "c.yaml", CHECKED.format(**{**GOOD, **change}))
    with pytest.raises(configuration.ConfigError) as exc:
        configuration.parse(str(path))
    assert message in str(exc.value)
    assert SECRET not in str(exc.value)


def test_configuration_accepts_and_the_notifier_reads_it(tmp_path):
    path = write_config(tmp_path / "c.yaml", CHECKED.format(**GOOD))
    s = settings.load(str(path))
    assert s.webhooks == {"ops": {"url": "https://hooks.example.org/x", "secret": "k"}}
    assert s.rate_limits == {"webhook:ops": RateLimit(10, 3600.0)}
