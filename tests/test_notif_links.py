"""Every link a notification carries opens a page of the web: each channel sends to a real
receiver, and each URL of what arrived (a mail's body, a webhook's ``text`` and ``links``,
gotify's and apprise's message) is fetched from the real web service over read models
seeded with real events, anchor included (the page has an element of that id). The URL a
message is about (what was checked) is no link of ours."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest

from services.notifier import channels
from services.notifier.message import Member, Message
from services.notifier.settings import NotifySettings
from services.web.settings import WebSettings
from tests.notif_receivers import HttpReceiver, SmtpReceiver
from tests.test_notif_channels import MSG
from tests.web_fixtures import Seeder, task_def, web_server

URL = re.compile(r"https?://[^\s\"'<>]+")


def _messages(web: str, task: str, other: str, judged_seq: int) -> list[Message]:
    """An alert, a reminder, a grouped alert and the no-agent alert."""
    one = msgspec.structs.replace(
        MSG, at=time.time(), task=task, domain="example.org", source_seq=judged_seq, web_url=web
    )
    reminder = msgspec.structs.replace(one, kind="reminder")
    members = [Member(x, "critical", "ok", f"https://example.org/{x}") for x in (task, other)]
    grouped = Message(
        key="g",
        kind="alert",
        severity="critical",
        at=one.at,
        web_url=web,
        members=members,
        group="example.org",
    )
    no_agent = Message(key="n", kind="no_agent", severity="no_agent", at=one.at, web_url=web)
    return [one, reminder, grouped, no_agent]


@pytest.fixture
async def http() -> AsyncIterator[HttpReceiver]:
    r = await HttpReceiver().start()
    yield r
    await r.stop()


def _received(smtp: SmtpReceiver, http: HttpReceiver, caplog: Any) -> dict[str, list[str]]:
    """Each channel → the texts that arrived through it."""
    webhook = [c["json"] for c in http.calls if c["path"] == "/hook/wh"]
    return {
        "mail": [m.get_content() for m in smtp.messages],  # type: ignore[attr-defined]
        "gotify": [c["json"]["message"] for c in http.on("/message")],
        "apprise": [c["json"]["message"] for c in http.on("/hook/team")],
        "webhook": [
            "\n".join([w["text"], *w["links"].values(), *(x["link"] for x in w["members"])])
            for w in webhook
        ],
        "local": [
            "\n".join([r.getMessage(), *map(str, getattr(r, "fields", {}).values())])
            for r in caplog.records
        ],
    }


async def test_every_link_of_every_channel_opens_a_page(database_url, http, caplog):
    s = Seeder(database_url)
    now = time.time()
    t, u = task_def(1), task_def(2)
    s.config([t, u], at=now - 600)
    s.result(t, "failure", now - 60, http=500)
    s.judge(t, "critical", "ok", now - 60, reason="status 500")
    judged = s.seq
    s.result(u, "failure", now - 60, http=500)
    s.judge(u, "critical", "ok", now - 60, reason="status 500")
    await s.flush()
    smtp = SmtpReceiver().start()
    caplog.set_level(logging.WARNING, logger="tocsin.notifier.local")
    try:
        async with web_server(
            database_url, WebSettings(cookie_secret="c" * 32, unauthenticated_access="all")
        ) as web:
            settings = NotifySettings(
                mail={
                    "mailfrom": "t@x",
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "addresses": ["o@x"],
                },
                gotify=[{"url": http.url, "tokens": ["tok"]}],
                apprise={"team": [f"json://127.0.0.1:{http.port}/hook/team"]},
                webhooks={"wh": {"url": f"{http.url}/hook/wh", "secret": "k"}},
            )
            names = {"local", "mail", "gotify", "apprise:team", "webhook:wh"}
            assert {n.partition(":")[0] for n in names} == set(channels.CATALOGUE)
            for m in _messages(web.url, t.id, u.id, judged):
                for name in sorted(names):
                    for to in channels.recipients(settings, name, "example.org"):
                        await channels.send(settings, name, to, m)
            got = _received(smtp, http, caplog)
            opened: dict[str, tuple[int, bool]] = {}
            async with httpx.AsyncClient() as c:
                for channel, texts in got.items():
                    assert len(texts) == 4, (channel, texts)
                    # The checked URLs are what the message is about; the links are the web's.
                    links = {x for text in texts for x in URL.findall(text)}
                    for link in {x for x in links if x.startswith(web.url)}:
                        r = await c.get(link)
                        anchor = urlsplit(link).fragment
                        found = not anchor or f'id="{anchor}"' in r.text
                        opened[f"{channel} {link}"] = (r.status_code, found)
    finally:
        smtp.stop()
    # The webhook body keeps its documented keys.
    webhook = [c["json"] for c in http.calls if c["path"] == "/hook/wh"]
    assert set(webhook[0]["links"]) == {"task", "results", "judgement"}
    assert len(opened) > 10
    assert {k: v for k, v in opened.items() if v != (200, True)} == {}
