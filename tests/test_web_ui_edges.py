"""The web UI's answers at its edges: logging in from a form posted while logged out, a page
number past the last page, and an address that can never name anything."""

from __future__ import annotations

import httpx

from services.web.settings import WebSettings
from tests.test_web_pages import seed
from tests.web_fixtures import web_server


async def test_login_from_a_form_posted_logged_out_comes_back_to_its_page(database_url):
    """A POST route has no page to show: after logging in, the browser goes back to the page
    the form was on (was: to the POST route, a 405)."""
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        page = f"{web.url}/tasks/abc?range=7d"
        hx = await c.post(
            "/tasks/abc/check",
            data={"csrf_token": "x"},
            headers={"HX-Request": "true", "HX-Current-URL": page},
        )
        assert hx.status_code == 401
        assert hx.headers["HX-Redirect"] == "/login?next=/tasks/abc%3Frange%3D7d"
        plain = await c.post("/tasks/abc/check", data={}, headers={"Referer": page})
        assert plain.status_code == 303
        assert plain.headers["location"] == "/login?next=/tasks/abc%3Frange%3D7d"
        # Neither header (or another site's double slash): the dashboard.
        for headers in ({}, {"Referer": "http://x//evil.example/"}):
            r = await c.post("/tasks/abc/check", data={}, headers=headers)
            assert r.headers["location"] == "/login?next=/", headers
        # A page itself still comes back to itself.
        assert (await c.get("/agents")).headers["location"] == "/login?next=/agents"


async def test_a_page_past_the_last_says_so_and_links_back(database_url):
    """``?page=99999`` (a bookmark kept while tasks went away, a number typed): not "no task
    yet" with a pager from 9999801 to 0, but where the last page is."""
    await seed(database_url)
    settings = WebSettings(cookie_secret="p" * 32, unauthenticated_access="all")
    async with web_server(database_url, settings) as web, httpx.AsyncClient(base_url=web.url) as c:
        page = (await c.get("/", params={"page": 99999})).text
        assert "No task on this page" in page and "No task yet" not in page
        assert 'href="/?q=&amp;severity=&amp;page=1">page 1</a>' in page
        assert "of 0" not in page and "page=99998" not in page
        only = (await c.get("/", params={"page": 5, "severity": "critical", "q": "b."})).text
        assert "No task on this page" in only and "severity=critical&amp;page=1" in only
        none = (await c.get("/", params={"page": 2, "q": "nothing-like-it"})).text
        assert "No task matches." in none
        audit = (await c.get("/audit", params={"page": 99999})).text
        assert "No event on this page" in audit and "page=99998" not in audit
        assert "page=1" in audit.split("No event on this page")[1]


async def test_a_request_id_that_can_never_be_valid_is_not_found(database_url):
    settings = WebSettings(cookie_secret="p" * 32, unauthenticated_access="all")
    async with web_server(database_url, settings) as web, httpx.AsyncClient(base_url=web.url) as c:
        for rid in ("nope", "a.b", "a.b.c.d", "a.b.c*"):
            r = await c.get(f"/requests/{rid}")
            assert r.status_code == 404 and "must be &lt;group&gt;." in r.text, rid
        # A well-formed id not projected yet (or ever): its page waits for it.
        assert (await c.get("/requests/g.default.r1")).status_code == 200
