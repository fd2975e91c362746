"""The live pages in headless Debian Chromium: what a live refresh (``sse:changed``) must
leave as it was (keyboard focus, opened sections, the filter typed), and the feedback of
"Check now" while its answer is on the way.

Skipped only when /usr/bin/chromium is missing and TOCSIN_REQUIRE_BROWSER is unset (CI sets
it), like tests/test_ui_browser.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.web.settings import load_settings
from tests.helpers import write_config

# Through the browser test, which skips first when no chromium is there.
from tests.test_ui_browser import CONFIG, Page, browser, expect, seed
from tests.web_fixtures import Seeder, WebServer, web_server

__all__ = ["browser"]  # the fixture, shared

# Resolves once the live block has been swapped by a refresh asked for here.
REFRESH = """() => new Promise(done => {
    document.body.addEventListener('htmx:afterSwap', () => done(true), {once: true});
    htmx.trigger('#live', 'sse:changed');
})"""


@pytest.fixture
async def web(database_url: str, tmp_path: Any) -> AsyncIterator[WebServer]:
    path = write_config(tmp_path / "c.yaml", CONFIG)
    s = Seeder(database_url)
    seed(s, path)
    await s.flush()
    settings = load_settings(
        str(path),
        env={"TOCSIN_COOKIE_SECRET": "u" * 32, "TOCSIN_UNAUTHENTICATED_ACCESS": "all"},
    )
    async with web_server(database_url, settings) as server:
        yield server


async def refresh(page: Page) -> None:
    """One live refresh, as a commit of the projector would cause, swapped for sure."""
    await page.evaluate("document.getElementById('live').oldBlock = true")
    assert await page.evaluate(REFRESH)
    assert await page.evaluate("document.getElementById('live').oldBlock") is None


async def test_refresh_keeps_focus_and_opened_sections(browser, web):
    page = await (await browser.new_context()).new_page()
    await page.goto(web.url + "/")
    link = page.locator("#live tr.task td.url a").nth(1)
    href = await link.get_attribute("href")
    await link.focus()
    await refresh(page)
    focused = "[document.activeElement.tagName, document.activeElement.getAttribute('href')]"
    assert await page.evaluate(focused) == ["A", href]
    # Tab goes on from there, not from the top of the page.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.getElementById('live').contains(document.activeElement)")

    await page.goto(web.url + "/audit")
    # The newest events first: the first with data (the first hundred are mostly verdicts).
    data = page.locator("#live details").first
    await data.locator("summary").click()
    await refresh(page)
    opened = "[...document.querySelectorAll('#live details')].map(d => d.open)"
    states = await page.evaluate(opened)
    assert states[0] is True and states.count(True) == 1
    assert await page.evaluate("document.activeElement.tagName") == "SUMMARY"
    await expect(page.locator("#live details").first.locator("pre")).to_be_visible()
