"""The web UI's answers at its edges: logging in from a form posted while logged out, a page
number past the last page, and an address that can never name anything."""

from __future__ import annotations

import httpx

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
