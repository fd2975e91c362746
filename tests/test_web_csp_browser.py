"""The Content-Security-Policy allows exactly what the pages load: in headless Chromium,
no page of the UI meets a CSP violation (htmx, its SSE extension, the stylesheet, the
inline SVG chart), and the live stream connects.

Skipped only when /usr/bin/chromium is missing and TOCSIN_REQUIRE_BROWSER is unset."""

from __future__ import annotations

import time

from tests.test_browser import browser, log_in  # noqa: F401  (the fixture)
from tests.web_fixtures import Seeder, add_user, task_def, web_server


async def test_no_page_violates_the_content_security_policy(browser, database_url):  # noqa: F811
    s = Seeder(database_url)
    now = time.time()
    t = task_def(1, "csp.example")
    s.config([t])
    for k in range(5):
        s.result(t, "success", now - 600 + k * 100, ms=100 + k)
    s.judge(t, "ok", None, now - 100)
    s.heartbeat("a1", now)
    await s.flush()
    await add_user(database_url, "ops", "correct horse")
    async with web_server(database_url) as web:
        page = await browser.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        await log_in(page, web.url, "ops", "correct horse")
        for path in ("/", f"/tasks/{t.id}", "/domains/csp.example", "/agents", "/audit", "/status"):
            await page.goto(web.url + path)
            await page.wait_for_load_state("load")
        await page.goto(f"{web.url}/tasks/{t.id}")
        assert await page.locator("svg.chart").count() == 1
        # The live stream (connect-src 'self') is open: htmx's SSE extension says so.
        await page.wait_for_function(
            "() => document.body['htmx-internal-data']?.sseEventSource?.readyState === 1"
        )
        assert violations == []
        await page.close()
