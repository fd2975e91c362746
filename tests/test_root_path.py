"""``general.root_path``: the whole UI and API behind a reverse proxy under a prefix, as in
Argos, whether the proxy strips the prefix or passes it on."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from services.web.settings import WebSettings, load_settings
from tests.test_web_pages import login
from tests.web_fixtures import Seeder, add_user, task_def, web_server

ROOT = "/argos"


class _StrippingProxy(httpx.AsyncHTTPTransport):
    """nginx's ``location /argos/ { proxy_pass http://tocsin/; }``: the prefix is cut."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().removeprefix(ROOT) or "/"
        request.url = request.url.copy_with(raw_path=path.encode())
        return await super().handle_async_request(request)


def test_root_path_is_read_from_general(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("general:\n  frequency: 1m\n  root_path: /argos/\nwebsites: []\n")
    assert load_settings(str(path), env={}).root_path == ROOT
    with pytest.raises(ValueError, match="root_path must start with '/'"):
        load_settings(None, env={"TOCSIN_ROOT_PATH": "argos"})


@pytest.mark.parametrize("stripped", [False, True], ids=["proxy-passes-prefix", "proxy-strips"])
async def test_every_link_and_redirect_stays_under_the_prefix(
    database_url: str, stripped: bool
) -> None:
    s = Seeder(database_url)
    t = task_def(1)
    s.config([t], at=time.time() - 60)
    await s.flush()
    await add_user(database_url, "ops", "s3cret")
    settings = WebSettings(cookie_secret="t" * 32, root_path=ROOT)
    async with web_server(database_url, settings) as web:
        # The browser's view is always under the prefix; the proxy may strip it.
        transport = _StrippingProxy() if stripped else httpx.AsyncHTTPTransport()
        async with httpx.AsyncClient(base_url=web.url + ROOT, transport=transport) as c:
            first = await c.get("/", follow_redirects=False)
            assert first.status_code == 303
            assert first.headers["location"].startswith(f"{ROOT}/login?next=")
            page = await c.get("/login")
            # In-page anchors (the skip link to #main) are not paths.
            links = re.findall(r'(?:href|src|action|sse-connect)="([^"#][^"]*)"', page.text)
            assert links and [x for x in links if not x.startswith(f"{ROOT}/")] == []
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            done = await c.post(
                "/login",
                data={
                    "username": "ops",
                    "password": "s3cret",
                    "csrf_token": token.group(1),
                    "next": f"{ROOT}/tasks/{t.id}",
                },
                follow_redirects=False,
            )
            assert done.status_code == 303 and done.headers["location"] == f"{ROOT}/tasks/{t.id}"
            assert f"Path={ROOT}" in done.headers["set-cookie"]
            # An outside target falls back to the prefix's home.
            assert (await login(c, "ops", "s3cret")).headers["location"] in (f"{ROOT}/",)
            dashboard = await c.get("/")
            assert dashboard.status_code == 200
            links = re.findall(r'(?:href|src|action|hx-get|sse-connect)="(/[^"]*)"', dashboard.text)
            assert links and [x for x in links if not x.startswith(f"{ROOT}/")] == []
            assert (await c.get("/static/tocsin.css")).status_code == 200
            assert (await c.get(f"/tasks/{t.id}")).status_code == 200
            assert (await c.get("/api/tasks")).json()[0]["id"] == t.id
            assert (await c.get("/api/nothing")).json() == {"detail": "Not Found"}


def test_no_template_writes_a_link_outside_the_prefix() -> None:
    """Pages not reached above (hosts, audit, results…) follow the same rule: every absolute
    link starts with ``{{ root }}``."""
    templates = Path(__file__).parent.parent / "services" / "web" / "templates"
    bare = re.compile(r'\b(?:href|src|action|hx-get|hx-post|sse-connect)="/')
    found = [
        f"{t.name}:{n}"
        for t in sorted(templates.glob("*.html"))
        for n, line in enumerate(t.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert found == []
