"""Status pages declared in the configuration, end to end over real NATS and PostgreSQL:
groups and components with their state (partial outage when only some checks fail), 90-day
bars, operators' incidents through the API (events → projector → page), the Atom feed
checked against RFC 4287, and an e-mail subscription confirmed through a real SMTP receiver
(aiosmtpd) by the notifier's mail channel. Plus the pure decisions behind the page."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from nats.aio.client import Client as NATS

from configuration.config import parse
from configuration.maintenance import parse_windows
from configuration.yamlsource import ConfigError
from events import codec, streams, subjects
from events.types import (
    CheckCompleted,
    CheckOutcome,
    ConfigApplied,
    Judgement,
    Observation,
    TaskDef,
    TaskJudged,
)
from readmodel import SCHEMA
from runtime import bus
from services.notifier import statusmail
from services.notifier.service import Notifier, NotifierOptions
from services.web import authdb, statusmodel
from services.web.settings import load_settings
from tests.helpers import Stack, wait_for, write_config
from tests.notif_receivers import SmtpReceiver
from tests.test_web_pages import login
from tests.web_fixtures import add_user, web_server

CONFIG = """
general:
  frequency: 1m
  ipv6: false
  mail:
    mailfrom: status@example.org
    host: 127.0.0.1
    port: {smtp}
    addresses: [ops@example.org]
websites:
  - domain: https://shop.example
    paths:
      - path: /
        checks:
          - status-is: 200
      - path: /api
        checks:
          - status-is: 200
          - body-contains: ok
  - domain: https://blog.example
    paths:
      - path: /
        checks:
          - status-is: 200
status_pages:
  - slug: public
    title: Shop status
    groups:
      - name: Shop
        components:
          - name: Storefront
            website: https://shop.example
            path: /
          - name: API
            website: https://shop.example
            path: /api
      - name: Content
        components:
          - name: Blog
            tasks: [https://blog.example/]
"""
ATOM = "{http://www.w3.org/2005/Atom}"


async def publish(js: Any, subject: str, ev: Any) -> None:
    await js.publish(subject, codec.encode(ev))


async def judge(js: Any, t: TaskDef, severity: str, at: float, status: str = "success") -> None:
    await publish(
        js,
        subjects.completed("a1", "default", t.group),
        CheckCompleted(
            at=at,
            request=f"r-{t.id}-{at}",
            group=t.group,
            agent="a1",
            location="default",
            started=at - 0.1,
            observation=Observation(status=200, elapsed_ms=30.0),
            outcomes=[CheckOutcome(task=t.id, kind=t.check, status=status)],  # type: ignore[arg-type]
        ),
    )
    await publish(
        js,
        subjects.judged(t.group),
        TaskJudged(
            at=at,
            group=t.group,
            completion=0,
            next_run=at + 60,
            judgements=[Judgement(task=t.id, severity=severity, previous=None, reason="test")],  # type: ignore[arg-type]
        ),
    )


def check_atom(text: str) -> ET.Element:
    """The MUST rules of RFC 4287 that apply to this feed: the namespace, exactly one id,
    title and updated per feed and per entry, absolute IRIs as ids, RFC 3339 dates, an
    author for every entry, a self link, content or an alternate link per entry, and
    unique entry ids."""
    root = ET.fromstring(text)
    assert root.tag == f"{ATOM}feed"

    def one(el: ET.Element, name: str) -> ET.Element:
        found = el.findall(f"{ATOM}{name}")
        assert len(found) == 1, f"{el.tag} needs exactly one {name}, has {len(found)}"
        return found[0]

    def date(el: ET.Element) -> None:
        value = (el.text or "").strip()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))

    def iri(value: str) -> None:
        assert urlsplit(value).scheme, f"not an absolute IRI: {value!r}"

    for name in ("id", "title", "updated"):
        one(root, name)
    iri(one(root, "id").text or "")
    date(one(root, "updated"))
    links = root.findall(f"{ATOM}link")
    assert any(link.get("rel") == "self" for link in links)
    for link in links:
        iri(link.get("href") or "")
    feed_author = root.findall(f"{ATOM}author")
    ids = set()
    for entry in root.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated"):
            one(entry, name)
        iri(one(entry, "id").text or "")
        date(one(entry, "updated"))
        assert feed_author or entry.findall(f"{ATOM}author")
        for a in entry.findall(f"{ATOM}author"):
            one(a, "name")
        assert entry.findall(f"{ATOM}content") or any(
            link.get("rel", "alternate") == "alternate" for link in entry.findall(f"{ATOM}link")
        )
        ids.add(one(entry, "id").text)
    assert len(ids) == len(root.findall(f"{ATOM}entry"))
    return root


async def test_status_page_incidents_feed_and_subscription(
    nats_server, database_url, tmp_path: Path
):
    smtp = SmtpReceiver().start()
    path = write_config(tmp_path / "c.yaml", CONFIG.format(smtp=smtp.port))
    config = parse(path)
    tasks = {(t.url, t.check): t for t in config.tasks.values()}
    nc = await bus.connect(nats_server.url, "test")
    js = nc.jetstream()
    notifier = Notifier(
        NotifierOptions(nats_server.url, database_url, str(path), web_url="http://status.test")
    )
    notifier_task = asyncio.create_task(notifier.run())
    stack = Stack(nats_server.url, database_url, path)
    try:
        await wait_for(lambda: _has_stream(js), what="the notifier's streams")
        stack.projector()
        now = time.time()
        await publish(
            js,
            subjects.CONFIG_APPLIED,
            ConfigApplied(
                at=now - 3 * 86400,
                revision="r1",
                source=str(path),
                applied_by="test",
                added=list(config.tasks.values()),
            ),
        )
        for t in config.tasks.values():
            await judge(js, t, "ok", now - 3 * 86400)
        blog = tasks[("https://blog.example/", "status-is")]
        # Two days ago the blog was down for an hour: a red day among green ones. Days are
        # UTC days: the hour starts at noon, not at this time of day (at 23:08 it spanned two).
        noon = dt.datetime.combine(
            dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2), dt.time(12), dt.UTC
        ).timestamp()
        await judge(js, blog, "critical", noon, "failure")
        await judge(js, blog, "ok", noon + 3600)
        # Now one of the API's two checks fails: the API is in partial outage, not down.
        await judge(
            js,
            tasks[("https://shop.example/api", "body-contains")],
            "critical",
            now - 60,
            "failure",
        )

        conn = await asyncpg.connect(database_url)
        await authdb.ensure(conn)
        token = await authdb.create_token(conn, "statusbot", "write")
        await conn.close()
        settings = load_settings(
            str(path), env={"NATS_URL": nats_server.url, "TOCSIN_COOKIE_SECRET": "s" * 32}
        )
        async with (
            web_server(database_url, settings) as web,
            httpx.AsyncClient(base_url=web.url) as c,
        ):
            await wait_for(
                lambda: _page_has(c, '"API" data-state="partial"'), what="the API in partial outage"
            )
            page = await c.get("/status/public")
            html = page.text
            assert "Partial outage" in html
            assert re.search(r'data-component="Storefront" data-state="up"', html)
            assert re.search(r'data-component="Blog" data-state="up"', html)
            blog_days = html.split('data-component="Blog"')[1].split("</div>\n  </div>")[0]
            assert blog_days.count('class="day down"') == 1
            assert blog_days.count('class="day up"') == 3
            # Public and the same for everyone: cacheable, no cookie, no admin link.
            assert page.headers["cache-control"] == "public, max-age=60"
            assert "set-cookie" not in page.headers
            for admin in ('href="/agents"', 'href="/audit"', 'href="/tasks/', 'href="/login"'):
                assert admin not in html
            assert (await c.get("/status")).headers["location"] == "/status/public"

            # Operators' incidents: writing needs a user or a token, even on a public page.
            body = {"title": "Checkout errors", "message": "Looking into it", "components": ["API"]}
            assert (await c.post("/api/status/public/incidents", json=body)).status_code == 401
            h = {"Authorization": f"Bearer {token}"}
            bad = await c.post(
                "/api/status/public/incidents", json=body | {"components": ["Nope"]}, headers=h
            )
            assert bad.status_code == 422 and "Nope" in bad.text
            opened = await c.post("/api/status/public/incidents", json=body, headers=h)
            assert opened.status_code == 200, opened.text
            iid = opened.json()["id"]
            upd = await c.post(
                f"/api/status/public/incidents/{iid}",
                json={"phase": "identified", "message": "A bad deploy <b>rolled back</b>"},
                headers=h,
            )
            assert upd.status_code == 200, upd.text
            assert (
                await c.post(
                    "/api/status/public/incidents/nope",
                    json={"phase": "resolved", "message": "x"},
                    headers=h,
                )
            ).status_code == 404
            await wait_for(lambda: _page_has(c, "rolled back"), what="the update on the page")
            html = (await c.get("/status/public")).text
            assert "Checkout errors" in html and "Looking into it" in html
            assert "&lt;b&gt;rolled back&lt;/b&gt;" in html and "<b>rolled back" not in html

            # The operators' form: logged in, with the CSRF token of the page.
            assert (await c.get("/status/public/incidents")).status_code in (303, 307)
            await add_user(database_url, "ops", "pw")
            assert (await login(c, "ops", "pw")).status_code == 303
            form_page = (await c.get("/status/public/incidents")).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form_page)
            assert csrf and "Checkout errors" in form_page
            posted = await c.post(
                "/status/public/incidents",
                data={
                    "title": "Blog maintenance",
                    "message": "Moving the blog",
                    "phase": "monitoring",
                    "components": ["Blog"],
                    "csrf_token": csrf.group(1),
                },
            )
            assert posted.status_code == 303
            forged = await c.post(
                "/status/public/incidents",
                data={"title": "x", "message": "y", "csrf_token": "forged"},
            )
            assert forged.status_code == 403
            await wait_for(lambda: _page_has(c, "Moving the blog"), what="the form's incident")
            c.cookies.clear()

            feed = await c.get("/status/public/feed.atom")
            assert feed.headers["content-type"].startswith("application/atom+xml")
            root = check_atom(feed.text)
            titles = [e.findtext(f"{ATOM}title") for e in root.findall(f"{ATOM}entry")]
            assert titles == [
                "[monitoring] Blog maintenance",
                "[identified] Checkout errors",
                "[investigating] Checkout errors",
            ]

            # Double opt-in: a request, a mail with the link, the link's button, then mails.
            sub = await c.post("/status/public/subscribe", data={"email": "fan@example.org"})
            assert sub.status_code == 303
            assert (
                await c.post("/status/public/subscribe", data={"email": "not an address"})
            ).status_code == 422
            await wait_for(lambda: _mails(smtp, 1), what="the confirmation mail")
            confirm_mail = smtp.messages[0]
            assert confirm_mail["To"] == "fan@example.org"
            link = re.search(
                r"http://status\.test(/status/public/confirm\?token=\S+)",
                str(confirm_mail.get_content()),
            )
            assert link
            form = await c.get(link.group(1))
            assert form.status_code == 200 and "Confirm" in form.text
            token_value = link.group(1).split("token=")[1]
            # Nothing is sent before the confirmation.
            await asyncio.sleep(0.5)
            assert len(smtp.messages) == 1
            wrong = await c.post("/status/public/confirm", data={"token": "forged"})
            assert wrong.status_code == 404
            await wait_for(
                lambda: _token_known(database_url, token_value),
                what="the request in the read model",
            )
            ok = await c.post("/status/public/confirm", data={"token": token_value})
            assert ok.status_code == 303 and "confirmed" in ok.headers["location"]
            # The status mailer has folded the confirmation: its consumer is past it.
            confirmed_at = (await nc.jetstream().stream_info(streams.EVENTS)).state.last_seq
            await wait_for(
                lambda: _status_mailer_past(nc, confirmed_at), what="the confirmation folded"
            )
            resolved = await c.post(
                f"/api/status/public/incidents/{iid}",
                json={"phase": "resolved", "message": "All good again"},
                headers=h,
            )
            assert resolved.status_code == 200
            await wait_for(lambda: _mails(smtp, 2), what="the incident mail to the subscriber")
            update_mail = smtp.messages[1]
            assert update_mail["To"] == "fan@example.org"
            assert update_mail["Subject"] == "[public] Checkout errors: resolved"
            assert "All good again" in str(update_mail.get_content())
    finally:
        notifier.stop()
        await asyncio.wait_for(notifier_task, 20)
        await stack.close()
        await bus.close(nc)
        smtp.stop()


async def _status_mailer_past(nc: NATS, seq: int) -> bool:
    info = await nc.jetstream().consumer_info(streams.EVENTS, statusmail.CONSUMER)
    return info.ack_floor.stream_seq >= seq


async def _mails(smtp: SmtpReceiver, n: int) -> bool:
    return len(smtp.messages) >= n


async def _has_stream(js: Any) -> bool:
    try:
        await js.stream_info(streams.EVENTS)
        return True
    except Exception:
        return False


async def _page_has(c: httpx.AsyncClient, text: str) -> bool:
    return text in (await c.get("/status/public")).text


async def _token_known(database_url: str, token: str) -> bool:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        return bool(await conn.fetchval("SELECT 1 FROM status_subscribers WHERE token = $1", token))
    finally:
        await conn.close()


def test_a_component_must_select_checks_of_the_file(tmp_path: Path):
    body = CONFIG.format(smtp=25).replace(
        "path: /api\n          - name", "path: /apx\n          - name"
    )
    body = body.replace("            path: /api\n", "            path: /apx\n")
    with pytest.raises(ConfigError) as err:
        parse(write_config(tmp_path / "c.yaml", body))
    assert "no website of this file checks shop.example path /apx" in str(err.value)
    assert re.search(
        r"c\.yaml:\d+:\d+: status_pages\[0\]\.groups\[0\]\.components\[1\]", str(err.value)
    )


NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("severities", "maintenance", "state"),
    [
        (["ok", "ok"], False, "up"),
        (["ok", "critical"], False, "partial"),
        (["warning"], False, "partial"),  # one location of several failing
        (["critical", "unknown"], False, "down"),
        (["pending"], False, "pending"),
        (["critical"], True, "maintenance"),
    ],
    ids=["all-ok", "one-of-two-fails", "warning", "all-fail", "no-data", "maintenance"],
)
def test_component_state(severities, maintenance, state):
    assert statusmodel.component_state(severities, maintenance) == state


def test_daily_bars_follow_every_task_of_the_component():
    h = dt.timedelta(hours=1)
    changes = {
        "a": [
            {"at": NOW - 100 * 24 * h, "severity": "ok"},
            {"at": NOW - 13 * h, "severity": "critical"},
            {"at": NOW - 12 * h, "severity": "ok"},
        ],
        "b": [
            {"at": NOW - 48 * h, "severity": "ok"},
            {"at": NOW - 12.5 * h, "severity": "critical"},
        ],
    }
    days = statusmodel.daily(changes, NOW, 5)
    assert [d.state for d in days] == ["up", "up", "up", "down", "partial"]
    # Both down together from 23:30 to midnight only.
    assert days[3].down == 1800 and days[3].partial == 1800
    assert statusmodel.daily({}, NOW, 2)[0].state == "none"


def test_maintenance_is_announced_a_week_ahead():
    windows = parse_windows(
        [{"start": "02:00", "duration": "1h", "days": ["wed"], "reason": "backups"}]
    )
    found = statusmodel.upcoming(windows, NOW)  # Tuesday noon
    assert found[0][0] == dt.datetime(2026, 12, 2, 2, tzinfo=dt.UTC) and found[0][2] == "backups"
    assert statusmodel.upcoming(windows, NOW, dt.timedelta(0)) == []


async def test_incident_command_publishes_to_the_log(nats_server):
    env = dict(os.environ, NATS_URL=nats_server.url)
    nc = await bus.connect(nats_server.url, "test")
    js = nc.jetstream()
    await streams.ensure(js, [])

    async def tocsin(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli", "incident", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        opened = await tocsin(
            "open", "public", "--title", "Slow API", "--message", "Looking", "--component", "API"
        )
        assert opened.returncode == 0, opened.stderr
        iid = opened.stdout.strip()
        updated = await tocsin("update", "public", iid, "--phase", "resolved", "--message", "Done")
        assert updated.returncode == 0 and "resolved" in updated.stdout, updated.stderr
        unknown = await tocsin("update", "public", "nope", "--phase", "resolved", "--message", "x")
        assert unknown.returncode == 1 and "no incident nope on page public" in unknown.stderr
        bad = await tocsin("open", "bad page", "--title", "t", "--message", "m")
        assert bad.returncode == 2 and "status page slug" in bad.stderr
        posted = [
            codec.decode(m.data, m.subject)
            async for m in bus.replay(js, subjects.status("incident", "public"))
        ]
        assert [(p.id, p.phase, p.title) for p in posted] == [
            (iid, "investigating", "Slow API"),
            (iid, "resolved", ""),
        ]
    finally:
        await bus.close(nc)


def test_a_component_written_with_env_masks_no_task_url(tmp_path: Path):
    # The demo writes its components with ${TOCSIN_DEMO_URL}: that must not turn whole task
    # URLs into secrets (masked in the UI and the API).
    body = """
general: {frequency: 1m, ipv6: false}
websites:
  - domain: ${SITE}
    paths:
      - {path: /healthy, checks: [{status-is: 200}]}
status_pages:
  - slug: demo
    title: Demo
    groups:
      - name: All
        components:
          - {name: Home, tasks: ["${SITE}/healthy"]}
          - {name: Site, website: "${SITE}", path: /healthy}
"""
    config = parse(write_config(tmp_path / "c.yaml", body), env={"SITE": "http://127.0.0.1:9"})
    # A website's address is shown even when the environment gives it; nothing else here is.
    assert config.secrets == set()
    assert [c["tasks"] for c in config.status_pages[0]["groups"][0]["components"]] == [
        list(config.tasks),
        list(config.tasks),
    ]
