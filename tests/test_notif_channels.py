"""Each channel against a real receiver on loopback, as a table: what arrives, and what
a failure looks like (a SendError with no secret in it)."""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from services.notifier import channels
from services.notifier.channels import SendError, apprise_, local, mail
from services.notifier.message import Message, body, subject
from services.notifier.settings import NotifySettings
from tests.notif_receivers import HttpReceiver, SmtpReceiver

MSG = Message(
    key="t1:42:mail:0",
    kind="alert",
    severity="critical",
    previous="ok",
    at=0.0,
    task="t1",
    domain="example.org",
    url="https://example.org/health",
    check="status-is",
    expected="200",
    ip_version=6,
    reason="status 500",
    failures=3,
    source_seq=42,
    web_url="http://tocsin.local",
)


@pytest.mark.parametrize(
    ("m", "in_subject", "in_body"),
    [
        (
            MSG,
            ["❌", "example.org", "status-is", "IPv6", "critical"],
            [
                "Previous state: ✅ ok",
                "URL: https://example.org/health",
                "status 500",
                "http://tocsin.local/tasks/t1",
                "http://tocsin.local/tasks/t1#results",
                "http://tocsin.local/tasks/t1#incidents",
            ],
        ),
        (
            Message(
                **{
                    **{f: getattr(MSG, f) for f in MSG.__struct_fields__},
                    "kind": "recovery",
                    "severity": "ok",
                    "previous": "critical",
                }
            ),
            ["✅", "back to ok"],
            ["Previous state: ❌ critical"],
        ),
        (
            Message(
                key="no_agent:1",
                kind="no_agent",
                severity="no_agent",
                at=0.0,
                reason="no agent heartbeat for 300s",
            ),
            ["no agent"],
            ["300s"],
        ),
    ],
)
def test_rendering(m, in_subject, in_body):
    for part in in_subject:
        assert part in subject(m)
    for part in in_body:
        assert part in body(m)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


def _client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.mark.parametrize(
    ("tls", "login", "cfg", "error"),
    [
        (False, None, {}, None),
        (
            True,
            ("bob", "s3cret"),
            {"starttls": True, "auth": {"login": "bob", "password": "s3cret"}},
            None,
        ),
        (True, None, {}, "SMTP"),  # the server insists on STARTTLS
    ],
)
async def test_mail(ca, tls, login, cfg, error):
    server = SmtpReceiver(_server_tls(ca) if tls else None, login).start()
    try:
        s = NotifySettings(
            mail={
                "mailfrom": "tocsin@x",
                "host": "127.0.0.1",
                "port": server.port,
                "addresses": ["ops@x"],
                **cfg,
            }
        )
        (to,) = mail.recipients(s, "example.org")
        if error:
            with pytest.raises(SendError) as exc:
                await mail.send(s, to.address, MSG, _client_tls(ca))
            assert error in str(exc.value)
            assert "s3cret" not in str(exc.value) and "wrong" not in str(exc.value)
            assert server.messages == []
        else:
            await mail.send(s, to.address, MSG, _client_tls(ca))
            (got,) = server.messages
            assert got[
                "X-Rcpt"
            ] == "ops@x" and "❌ https://example.org/health (status-is, IPv6)" in str(
                got["Subject"]
            )
            assert "Previous state: ✅ ok" in got.get_content()  # type: ignore[attr-defined]
    finally:
        server.stop()


@pytest.fixture
async def http() -> AsyncIterator[HttpReceiver]:
    r = await HttpReceiver().start()
    yield r
    await r.stop()


@pytest.mark.parametrize(("fail", "error"), [(0, None), (1, "answered 500")])
async def test_gotify(http, fail, error):
    http.failures_left = fail
    s = NotifySettings(gotify=[{"url": http.url, "tokens": ["tok-A", "tok-B"]}])
    found = channels.recipients(s, "gotify", None)
    assert [r.label for r in found] == [f"{http.url} token #1", f"{http.url} token #2"]
    if error:
        with pytest.raises(SendError, match=error) as exc:
            await channels.send(s, "gotify", found[0], MSG)
        assert "tok-A" not in str(exc.value)
        return
    await channels.send(s, "gotify", found[1], MSG)
    (call,) = http.on("/message")
    assert call["headers"]["X-Gotify-Key"] == "tok-B"
    assert call["json"]["priority"] == 8 and "example.org" in call["json"]["title"]


@pytest.mark.parametrize(("fail", "ok"), [(0, True), (1, False)])
async def test_apprise_json_webhook(http, fail, ok):
    http.failures_left = fail
    url = f"json://user:hunter2@127.0.0.1:{http.port}/hook/ops"
    s = NotifySettings(apprise={"team": [url]})
    (to,) = channels.recipients(s, "apprise:team", None)
    assert "hunter2" not in to.label and to.label.startswith("json://")
    if not ok:
        with pytest.raises(SendError) as exc:
            await channels.send(s, "apprise:team", to, MSG)
        assert "hunter2" not in str(exc.value)
        return
    await channels.send(s, "apprise:team", to, MSG)
    (call,) = http.on("/hook/ops")
    assert "example.org" in call["json"]["title"] and "status 500" in call["json"]["message"]


def test_apprise_label_of_a_bad_url():
    assert apprise_.label("nope://x") == "nope://(invalid URL)"


def test_local_is_a_log_line(caplog):
    caplog.set_level("WARNING", logger="tocsin.notifier.local")
    local.send(MSG)
    (rec,) = caplog.records
    assert "example.org" in rec.getMessage()
    assert rec.fields["severity"] == "critical"  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(channels.CATALOGUE))
def test_every_channel_is_complete(name):
    """docs/adding-a-channel.md: a module of its own, a table test, a docs mention."""
    root = Path(__file__).resolve().parent.parent
    cls = channels.CATALOGUE[name]
    module = cls.__module__.rsplit(".", 1)[-1]
    assert cls.__module__.startswith("services.notifier.channels.") and module.rstrip("_") == name
    tables = [
        p
        for p in (root / "tests").glob("test_notif_*.py")
        if re.search(rf"^(async )?def test_{name}[_(]", p.read_text(), re.M)
    ]
    assert tables, f"no test_{name} table in tests/test_notif_*.py"
    docs = (root / "docs" / "alerting.md").read_text()
    assert re.search(rf"^\| `{name}(:<\w+>)?` \|", docs, re.M), f"{name} not in docs/alerting.md"
