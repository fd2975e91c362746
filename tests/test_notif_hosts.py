"""The notifier treats host tasks like a website's: retries, recipients and maintenance
windows from the ``hosts`` section, by the judgement's group ``h-<agent>``."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from configuration.config import group_id
from services.notifier import settings as notify_settings
from services.notifier.hosts import host_task
from services.notifier.message import Message, subject
from services.notifier.routing import channels_for
from services.notifier.silences import why_silent

CONFIG = """
general:
  frequency: 1m
  alerts:
    critical: [local]
  apprise: {dba: ["json://127.0.0.1:9/x"]}
websites: []
hosts:
  retry_before_notification: 1
  machines:
    - agent: db1
      retry_before_notification: 3
      add_alerts_recipients: {critical: ["apprise:dba"]}
      maintenance:
        - {start: "START", duration: 366d, reason: "never ends"}
"""


def test_host_tasks_take_their_settings_from_the_hosts_section(tmp_path: Path):
    path = tmp_path / "c.yaml"
    now = time.time()
    # A window as long as the settings allow, begun a day ago: in force now.
    start = dt.datetime.fromtimestamp(now - 86400, dt.UTC).isoformat()
    path.write_text(CONFIG.replace("START", start))
    s = notify_settings.load(str(path))
    db1, web1 = host_task(s, "h-db1", "hx"), host_task(s, "h-web1", "hy")
    assert db1 is not None and web1 is not None
    assert (db1.domain, db1.retry_before_notification) == ("host:db1", 3)
    assert (web1.domain, web1.retry_before_notification) == ("host:web1", 1)
    assert [t.channel for t in channels_for(s, "host:db1", "critical")] == ["local", "apprise:dba"]
    assert [t.channel for t in channels_for(s, "host:web1", "critical")] == ["local"]
    assert why_silent(s, {}, "host:db1", "hx", now) == "maintenance window: never ends"
    assert why_silent(s, {}, "host:web1", "hy", now) is None
    website = group_id("https://example.org/", "GET", 4, None)
    assert host_task(s, website, "t1") is None  # a check's task: not a host's


def test_host_alert_subject_names_the_host_and_the_figure():
    m = Message(
        key="k",
        kind="alert",
        severity="critical",
        at=0.0,
        domain="host:db1",
        url="host://db1",
        check="host",
        reason="disk /var 93.0 % used (warning above 80 %, critical above 90 %)",
    )
    assert subject(m) == (
        "[Tocsin] ❌ host:db1: disk /var 93.0 % used (warning above 80 %, critical above 90 %) "
        "is now critical"
    )
