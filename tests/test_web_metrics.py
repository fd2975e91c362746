"""/metrics passes Prometheus's own linter (promtool), and /metrics and ``tocsin notify
test`` reach a secured bus with the service's credentials."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import nats
import pytest

from events import codec, streams, subjects
from runtime.embedded import NatsServer
from services.notifier.cli import send_test
from services.notifier.settings import NotifySettings
from services.web.settings import WebSettings
from tests.security_support import connect, start_secured
from tests.web_fixtures import Seeder, task_def, web_server


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("TOCSIN_REQUIRE_BROWSER") or os.environ.get("CI"):
        pytest.fail("promtool is missing (Debian package prometheus); CI must install it")
    pytest.skip("promtool is missing (Debian package prometheus)")


def assert_lint_clean(tool: str, text: str) -> None:
    lint = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr + text


def settings(nats_url: str) -> WebSettings:
    return WebSettings(cookie_secret="t" * 32, unauthenticated_access="all", nats_url=nats_url)


async def test_metrics_pass_promtool(database_url, nats_server: NatsServer):
    tool = promtool()
    s = Seeder(database_url)
    t = task_def(1)
    s.config([t])
    s.result(t, "success", time.time() - 5, ms=120.0)
    s.judge(t, "ok", None, time.time() - 5)
    s.heartbeat("alive", time.time())
    await s.flush()
    nc = await nats.connect(nats_server.url)
    await streams.ensure(nc.jetstream(), ["default"])
    # Two ephemeral consumers (a page's live stream, a command's read): random names.
    for _ in range(2):
        await nc.jetstream().subscribe(subjects.ALL, ordered_consumer=True)
    async with web_server(database_url, settings(nats_server.url)) as web:
        async with httpx.AsyncClient(base_url=web.url) as c:
            await c.get("/api/tasks")
            text = (await c.get("/metrics")).text
    durable = {
        c.name
        for stream in (streams.EVENTS, streams.WORK)
        for c in await nc.jetstream().consumers_info(stream)
        if c.config.durable_name
    }
    await nc.close()
    assert_lint_clean(tool, text)
    labels = set(re.findall(r'consumer="([^"]*)"', text))
    assert labels == durable | {"ephemeral"}, labels
    assert "tocsin_nats_up 1.0" in text
    # Two labels, not one escaped label; a summary, not a gauge with quantiles; counters _total.
    assert 'tocsin_consumer_pending{consumer="projector",stream="EVENTS"}' in text
    assert "# TYPE tocsin_check_response_seconds summary" in text
    assert 'tocsin_check_response_seconds{quantile="0.5"}' in text
    assert "# TYPE tocsin_checks_completed_total counter" in text
    assert 'tocsin_checks_completed_total{agent="alive",location="default"} 5.0' in text
    assert 'tocsin_http_request_duration_seconds_bucket{le="0.005",method="GET"' in text


async def test_a_label_value_with_quotes_stays_one_label(database_url):
    tool = promtool()
    s = Seeder(database_url)
    s.config([task_def(1)])
    s.heartbeat('agent "x", location="y"\n', time.time())
    await s.flush()
    async with web_server(database_url, settings("")) as web:
        async with httpx.AsyncClient(base_url=web.url) as c:
            text = (await c.get("/metrics")).text
    assert_lint_clean(tool, text)
    assert 'agent="agent \\"x\\", location=\\"y\\"\\n"' in text


async def test_metrics_and_notify_test_use_the_service_credentials(
    database_url, tmp_path: Path, monkeypatch
):
    bus = start_secured(tmp_path, {})
    try:
        admin = await connect(bus.url, bus.security("admin"))
        js = admin.jetstream()
        await streams.ensure(js, ["default"])
        monkeypatch.setenv("TOCSIN_NATS_CREDS", str(bus.store.creds_path("web")))
        async with web_server(database_url, settings(bus.url)) as web:
            async with httpx.AsyncClient(base_url=web.url) as c:
                text = (await c.get("/metrics")).text
        assert "tocsin_nats_up 1.0" in text and "tocsin_consumer_pending{" in text
        monkeypatch.setenv("TOCSIN_NATS_CREDS", str(bus.store.creds_path("notifier")))
        results = await send_test(NotifySettings(), "local", "critical", bus.url)
        assert results == [("log", None)]
        sub = await js.subscribe(subjects.notification("sent"), ordered_consumer=True)
        msg = await sub.next_msg(timeout=30)
        assert codec.decode(msg.data, msg.subject).kind == "test"
        await admin.close()
    finally:
        bus.server.stop()
