"""A heartbeat monitor's name is what follows ``heartbeat://``, as written: ``%`` included.
Every link of the web to its domain page must lead back to that page, which a link that
carried the name unencoded did not (``x%41y`` was read back as ``xAy``, ``a%2Fb`` as a path)."""

from __future__ import annotations

import html
import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from configuration import config
from services.web.settings import WebSettings
from tests.web_fixtures import Seeder, web_server

NAMES = [
    pytest.param("x%41y", id="percent-escape-of-a-letter"),
    pytest.param("caf%C3%A9", id="percent-escapes-of-utf8"),
    pytest.param("backup%232", id="percent-escape-of-a-hash"),
    pytest.param("a%2Fb", id="percent-escape-of-a-slash"),
    pytest.param("100%25", id="percent-escape-of-a-percent"),
    pytest.param("50%done", id="lone-percent"),
]


def _tasks(tmp_path: Path, name: str) -> list:
    """The monitor's tasks as the scheduler reads them from a file."""
    path = tmp_path / "c.yaml"
    path.write_text(
        f"general:\n  frequency: 1m\nwebsites:\n  - domain: 'heartbeat://{name}'\n"
        f"    checks:\n      - heartbeat: {{uuid: {uuid.uuid4()}, period: 1h}}\n"
    )
    return list(config.parse(path, {}).tasks.values())


async def _is_the_monitor(c: httpx.AsyncClient, href: str, name: str) -> None:
    page = await c.get(html.unescape(href))
    assert page.status_code == 200, (href, page.status_code)
    assert f"<h1>{html.escape(name)}</h1>" in page.text, href


@pytest.mark.parametrize("name", NAMES)
async def test_every_link_to_a_monitor_leads_to_it(database_url, tmp_path, name):
    tasks = _tasks(tmp_path, name)
    assert [t.domain for t in tasks] == [name]
    seeder = Seeder(database_url)
    seeder.config(tasks)
    await seeder.flush()
    public = WebSettings(cookie_secret="t" * 32, unauthenticated_access="all")
    async with web_server(database_url, public) as web, httpx.AsyncClient(base_url=web.url) as c:
        dashboard = (await c.get("/")).text
        (link,) = re.findall(r'href="(/domains/[^"]*)"', dashboard)
        await _is_the_monitor(c, link, name)
        task = (await c.get(f"/tasks/{tasks[0].id}")).text
        (back,) = re.findall(r'href="(/domains/[^"]*)"', task)
        await _is_the_monitor(c, back, name)
        page = (await c.get(html.unescape(link))).text
        # The spans of the history, its live refresh, its badges.
        spans = re.findall(r'href="(/domains/[^"]*\?span=[^"]*)"', page)
        (live,) = re.findall(r'id="live" hx-get="([^"]*)"', page)
        assert spans and live
        for href in [*spans, live]:
            await _is_the_monitor(c, href, name)
        for badge in re.findall(r'src="(/badges/domain/[^"]*)"', page):
            assert (await c.get(html.unescape(badge))).status_code == 200, badge
    # Logged out: the login page sends the user back to that same page.
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        login = await c.get(html.unescape(link))
        assert login.status_code == 303
        (after,) = parse_qs(urlsplit(login.headers["location"]).query)["next"]
        assert after == html.unescape(link)
