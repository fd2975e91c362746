"""A website whose domain carries credentials (``http://monitor:s3cret@host:port``) is one
website everywhere the notifier looks it up by domain: its own recipients (when queued and
when sent), silences named by its URL or by its masked domain (as the log shows it), its
maintenance windows, and ``depends_on`` naming it. Each with the settings of the notifier's
file, of the log once applied, and of the log read by a notifier started with another file
(the credentials then unknown to it)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from configuration import config as configuration
from configuration import published, redaction
from configuration.inforce import InForce
from events.types import Judgement, SilenceAdded
from services.notifier import channels, targets
from services.notifier.decide import TaskState
from services.notifier.judgement import message, on_judgement
from services.notifier.service import Notifier, NotifierOptions
from services.notifier.settings import NotifySettings
from tests.helpers import write_config

SITE = "http://monitor:s3cret@localhost:19103"
MASKED = redaction.public_url("monitor:s3cret@localhost:19103")
BODY = """general:
  frequency: 1m
  ipv6: false
  alerts:
    critical: [mail]
    ok: [mail]
  mail: {{mailfrom: t@x, host: 127.0.0.1, port: 2525, addresses: [ops@x]}}
websites:
  - domain: {site}
    add_alerts_recipients: {{mail: [cred-owner@test.local]}}
    {maintenance}
    paths:
      - path: /private
        checks: [status-is: 200]
  - domain: http://localhost:19104
    depends_on: [{site}/private]
    paths:
      - path: /
        checks: [status-is: 200]
"""
OTHER = "general: {frequency: 1m}\nwebsites: []\n"


def _settings(tmp_path: Path, source: str, maintenance: str = "") -> NotifySettings:
    """The notifier's settings, from ``source``: its file, the log (applied from that file),
    or the log as a notifier started with another file reads it."""
    path = write_config(tmp_path / "c.yaml", BODY.format(site=SITE, maintenance=maintenance))
    cfg = configuration.parse(str(path))
    own = path if source != "log, another file" else write_config(tmp_path / "o.yaml", OTHER)
    notifier = Notifier(NotifierOptions("nats://127.0.0.1:1", "postgresql://x/y", str(own)))
    if source != "file":
        logged = {k: redaction.redact(t, cfg.secrets) for k, t in cfg.tasks.items()}
        notifier.now = InForce(tasks=logged, settings=published.public(cfg), last_seq=1)
        notifier.logged = logged
        notifier._derive()
    return notifier.settings


def _task(s: NotifySettings, port: int) -> str:
    (found,) = [k for k, t in s.tasks.items() if t.domain.endswith(f":{port}")]
    return found


SOURCES = ["file", "log", "log, another file"]


@pytest.mark.parametrize("source", SOURCES)
def test_a_website_with_credentials_gets_its_own_recipients(tmp_path: Path, source: str):
    s = _settings(tmp_path, source)
    task = _task(s, 19103)
    j = Judgement(task, "critical", "ok", "status 500", 1)
    out = on_judgement(s, {}, time.time(), j, TaskState(), {})
    m = message(s, time.time(), 7, j, out.intents[0])
    queued = [r.label for r in channels.recipients(s, "mail", out.domain)]
    sent = [r.label for r in channels.recipients(s, "mail", m.domain)]  # the sender's lookup
    assert (queued, sent) == (["ops@x", "cred-owner@test.local"],) * 2
    assert "s3cret" not in repr(m)


def _silence(s: NotifySettings, named: str) -> SilenceAdded:
    domains = {k: redaction.redact(t).domain for k, t in s.tasks.items()}
    domain, _ = targets.target(domains, named, None)
    now = time.time()
    return SilenceAdded(
        at=now, id="s1", starts=now - 1, ends=now + 60, reason="r", by="t", domain=domain
    )


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("named", "held"),
    [
        pytest.param(SITE, True, id="by-its-url-as-written"),
        pytest.param(SITE + "/", True, id="by-its-url-with-a-slash"),
        pytest.param(MASKED, True, id="by-its-domain-as-the-log-shows-it"),
        pytest.param("http://localhost:19104", False, id="another-site"),
    ],
)
def test_a_website_with_credentials_is_silenced_by_its_domain(
    tmp_path: Path, source: str, named: str, held: bool
):
    s = _settings(tmp_path, source)
    silence = _silence(s, named)
    assert "s3cret" not in repr(silence)  # the log never gets the credentials
    j = Judgement(_task(s, 19103), "critical", "ok", "status 500", 1)
    out = on_judgement(s, {"s1": silence}, time.time(), j, TaskState(), {})
    assert (out.held is not None, bool(out.intents)) == (held, not held)


@pytest.mark.parametrize("source", SOURCES)
def test_depends_on_and_maintenance_name_a_website_with_credentials(tmp_path: Path, source: str):
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    window = f"maintenance: [{{start: '{start}', duration: 1d, reason: works}}]"
    s = _settings(tmp_path, source)
    dependant, dependency = _task(s, 19104), _task(s, 19103)
    assert s.depends == {dependant: {dependency}}
    j = Judgement(dependant, "critical", "ok", "status 500", 1)
    out = on_judgement(s, {}, time.time(), j, TaskState(), {dependency: "critical"})
    assert out.held == f"blocked by http://{MASKED}/private"  # named as the log shows it
    held = _settings(tmp_path, source, window)
    j = Judgement(dependency, "critical", "ok", "status 500", 1)
    out = on_judgement(held, {}, time.time(), j, TaskState(), {})
    assert out.held == "maintenance window: works"
