"""The live pages in headless Debian Chromium: what a live refresh (``sse:changed``) must
leave as it was (keyboard focus, opened sections, the filter typed), and the feedback of
"Check now" while its answer is on the way.

Skipped only when /usr/bin/chromium is missing and TOCSIN_REQUIRE_BROWSER is unset (CI sets
it), like tests/test_ui_browser.py.
"""

from __future__ import annotations

import asyncio
import re
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


@pytest.mark.parametrize("first", ["refresh", "filter"])
async def test_filter_typed_while_a_refresh_is_on_its_way_wins(browser, web, first):
    """A refresh of the unfiltered list sent before the filter's request, answered before or
    after it (both held here, then let go in that order): the filtered list shows at the
    end, and the next refresh asks for it."""
    page = await (await browser.new_context()).new_page()
    held: dict[str, Any] = {}
    both = asyncio.Event()

    async def hold(route: Any) -> None:
        kind = "filter" if "q=" in route.request.url else "refresh"
        if route.request.headers.get("hx-request") and kind not in held:
            held[kind] = route
            if len(held) == 2:
                both.set()
        else:
            await route.continue_()

    async def let_go(kind: str) -> None:
        done = asyncio.get_running_loop().create_future()
        request = held[kind].request
        page.on("requestfinished", lambda r: r is request and done.set_result(r))
        await held[kind].continue_()
        await done

    await page.route(re.compile(re.escape(web.url) + r"/(\?.*)?$"), hold)
    await page.goto(web.url + "/")
    await page.evaluate("htmx.trigger('#live', 'sse:changed')")
    await page.fill("input[name=q]", "blog")
    await both.wait()
    await let_go(first)
    if first == "refresh":  # swapped, as the filter's answer is not there yet
        await expect(page.locator("#live tr.task")).to_have_count(6)
    await let_go("filter" if first == "refresh" else "refresh")
    # A refresh sent now is answered after those: the page has dealt with them by then.
    await refresh(page)
    rows = page.locator("#live tr.task")
    await expect(rows).to_have_count(2)
    assert all("blog.example" in t for t in await rows.all_inner_texts())
    await expect(page).to_have_url(re.compile(r"q=blog"))
    assert "q=blog" in (await page.get_attribute("#live", "hx-get") or "")


async def test_check_now_says_sending_and_sends_once(browser, web):
    """While "Check now"'s answer is on its way (held here) the button is disabled and says
    so; a double click sends one request."""
    page = await (await browser.new_context()).new_page()
    posts: list[Any] = []
    first = asyncio.Event()

    async def hold(route: Any) -> None:
        posts.append(route)
        first.set()

    await page.route("**/check", hold)
    await page.goto(web.url + "/")
    await page.locator("#live tr.task td.url a").first.click()
    button = page.locator("#check-now")
    await button.dblclick()
    await first.wait()
    await expect(button).to_be_disabled()
    await expect(page.locator("form.checknow .htmx-indicator")).to_be_visible()
    await button.click(force=True)  # pressed again while disabled: nothing
    await posts[0].fulfill(status=202, body="<ul class='checknow'><li>queued</li></ul>")
    await expect(page.locator(".checknow-result")).to_have_text("queued")
    await expect(button).to_be_enabled()
    await expect(page.locator("form.checknow .htmx-indicator")).to_be_hidden()
    assert len(posts) == 1
