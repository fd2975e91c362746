"""Every page in headless Debian Chromium at 360 px (the narrowest common phone) and 1400 px,
light and dark: no horizontal overflow, no box whose content spills over what follows it, no
request leaving the server, no console error, and no serious or critical accessibility
violation by axe-core (vendored under tests/vendor, from npm).

Skipped only when /usr/bin/chromium is missing and TOCSIN_REQUIRE_BROWSER is unset (CI sets
it). With TOCSIN_SCREENSHOTS=DIR the dashboard, a task page and a status page are saved
there at both widths and in both themes (docs/screenshots/ holds the README's).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from configuration.config import parse
from events.types import (
    NotificationSent,
    SilenceAdded,
    StatusIncidentPosted,
)
from services.web.settings import load_settings
from tests.helpers import write_config
from tests.test_web_hosts import add_hosts
from tests.web_fixtures import Seeder, WebServer, add_user, web_server

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM) and not os.environ.get("TOCSIN_REQUIRE_BROWSER"):
    pytest.skip(
        "Debian chromium not installed (CI installs it and requires it)", allow_module_level=True
    )

from playwright.async_api import Browser, Page, async_playwright, expect  # noqa: E402

AXE = (Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js").read_text()
WIDTHS = (360, 1400)
SPILLS = """() => [...document.querySelectorAll('body *')].filter(e => {
    const s = getComputedStyle(e);
    return !s.display.startsWith('inline') && s.overflowY === 'visible'
        && e.clientHeight > 0 && e.scrollHeight > e.clientHeight + 1;
}).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''))"""
SCHEMES = ("light", "dark")
CONFIG = """
general:
  frequency: 1m
  ipv6: false
  maintenance:
    - {start: "03:00", duration: 1h, days: [sun], reason: database upgrade}
websites:
  - domain: https://www.example-shop-with-a-rather-long-domain-name.example
    paths:
      - path: /
        checks:
          - status-is: 200
          - body-contains: '"up"'
      - path: /api/v1/orders/very/long/path/that/must/wrap/on/a/phone?with=a&query=string
        checks:
          - status-is: 200
          - response-time: {warning: 200ms, critical: 1s}
  - domain: https://blog.example
    paths:
      - path: /
        checks:
          - status-is: 200
      - path: /feed
        checks:
          - status-in: [200, 304]
status_pages:
  - slug: public
    title: Example Shop status
    description: Shop, API and blog, checked every minute from Tocsin.
    groups:
      - name: Shop
        components:
          - name: Storefront
            website: https://www.example-shop-with-a-rather-long-domain-name.example
            path: /
          - name: Orders API
            website: https://www.example-shop-with-a-rather-long-domain-name.example
            path: /api/v1/orders/very/long/path/that/must/wrap/on/a/phone?with=a&query=string
      - name: Content
        components:
          - name: Blog
            website: https://blog.example
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:

    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        await b.close()


def seed(s: Seeder, path: Path) -> dict[str, Any]:
    """Three days of history: every severity, a flapping check, an incident with its
    notification and a silence, an operator's incident on the status page."""
    config = parse(path)
    tasks = sorted(config.tasks.values(), key=lambda t: (t.url, t.check))
    now = time.time()
    s.config(tasks, at=now - 3 * 86400)
    plan = {"ok": [], "warning": [], "critical": [], "unknown": []}
    for t in tasks:
        if t.check == "response-time":
            plan["warning"].append(t)
        elif t.check == "status-in":
            plan["unknown"].append(t)
        elif t.check == "body-contains":
            plan["critical"].append(t)
        else:
            plan["ok"].append(t)
    last: dict[str, str | None] = {t.id: None for t in tasks}
    seqs = {}
    for k in range(40):
        at = now - 3 * 3600 + k * 270
        for sev, ts in plan.items():
            for t in ts:
                flap = k in (12, 13) and sev == "ok"
                severity = "critical" if flap else sev if k >= 30 else "ok"
                status = {"ok": "success", "warning": "success", "critical": "failure"}.get(
                    severity, "error"
                )
                ms = (
                    None
                    if status == "error"
                    else 80 + (k * 37) % 140 + (400 if sev == "warning" and k >= 30 else 0)
                )
                seqs[t.id] = s.result(
                    t,
                    status,
                    at,
                    http=None if status == "error" else (200 if status == "success" else 503),
                    ms=ms,
                    error="connection refused" if status == "error" else None,
                    detail="" if status == "success" else "status 503, expected 200",
                )
                s.judge(t, severity, last[t.id], at, reason=f"judged {severity}")
                last[t.id] = severity
    critical = plan["critical"][0]
    s.add(
        NotificationSent(
            at=now - 3 * 3600 + 30 * 270 + 5,
            key=f"{critical.id}:x",
            kind="alert",
            channel="mail",
            recipient="ops@example.org",
            severity="critical",
            previous="ok",
            task=critical.id,
            domain=critical.domain,
            source_seq=1,
            attempt=1,
        )
    )
    s.add(
        SilenceAdded(
            at=now - 600,
            id="s1",
            starts=now - 600,
            ends=now + 3600,
            reason="known: vendor outage",
            by="ops",
            task=critical.id,
        )
    )
    s.add(
        StatusIncidentPosted(
            at=now - 1800,
            id="inc1",
            page="public",
            phase="investigating",
            message="Some orders fail to load; we are looking into it.",
            by="ops",
            title="Orders API slow",
            components=["Orders API"],
        )
    )
    s.add(
        StatusIncidentPosted(
            at=now - 900,
            id="inc1",
            page="public",
            phase="identified",
            message="A slow database query; a fix is being deployed.",
            by="ops",
        )
    )
    return {"task": critical, "ok": plan["ok"][0], "result": seqs[critical.id]}


def _console(message: Any, errors: list[str]) -> None:
    if message.type == "error":
        errors.append(f"{message.location.get('url')}: {message.text}")


async def audit(page: Page, url: str, problems: list[str]) -> None:
    await page.goto(url)
    await page.wait_for_load_state("networkidle")
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        problems.append(f"{url}: {width[0]} px wide in a {width[1]} px window")
    if not url.endswith("/docs"):  # Swagger UI's own layout, vendored as it is
        # A box whose content spills out below it draws over what follows (a graph's
        # caption over a table's header): content taller than the box, nothing clipping it.
        problems += [f"{url}: content spills out of {s}" for s in await page.evaluate(SPILLS)]
    await page.evaluate(AXE)
    found = await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => v.id + ' (' + v.impact + '): ' +
                  v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))"""
    )
    problems += [f"{url}: axe {v}" for v in found]


async def visit(
    browser: Browser, web: WebServer, width: int, scheme: str, pages: list[str], shots: str | None
) -> list[str]:
    """Log in and audit every page at one width in one scheme, in a context of its own."""
    problems: list[str] = []
    context = await browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme
    )
    outside: list[str] = []

    async def local_only(route: Any) -> None:
        if route.request.url.startswith(web.url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", local_only)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: _console(m, errors))
    page.on("pageerror", lambda e: errors.append(str(e)))
    await audit(page, web.url + "/login", problems)
    await page.fill("input[name=username]", "ops")
    await page.fill("input[name=password]", "pw")
    await page.click("button[type=submit]")
    # A liveness bound: four runs log in at once on a 2-core machine.
    await expect(page.locator("header .user")).to_have_text("ops", timeout=30_000)
    for p in pages:
        await audit(page, web.url + p, problems)
    if shots:
        # pages[1] is the task page.
        for name, p in (("dashboard", "/"), ("task", pages[1]), ("status", "/status/public")):
            await page.goto(web.url + p)
            await page.wait_for_load_state("networkidle")
            await page.screenshot(
                path=f"{shots}/{name}-{width}-{scheme}.png", full_page=width > 1000
            )
    await context.close()
    problems += [f"console error {e}" for e in errors]
    problems += [f"request left the server: {u}" for u in outside]
    # The runs go at once: each problem says which one found it.
    return [f"{width}/{scheme}: {p}" for p in problems]


async def test_every_page_fits_stays_local_and_passes_axe(browser, database_url, tmp_path):
    path = write_config(tmp_path / "c.yaml", CONFIG)
    s = Seeder(database_url)
    data = seed(s, path)
    add_hosts(s)
    await s.flush()
    await add_user(database_url, "ops", "pw")
    settings = load_settings(str(path), env={"TOCSIN_COOKIE_SECRET": "u" * 32})
    shots = os.environ.get("TOCSIN_SCREENSHOTS")
    async with web_server(database_url, settings) as web:
        t = data["task"]
        pages = [
            "/",
            f"/tasks/{t.id}",
            f"/tasks/{t.id}/results/{data['result']}",
            f"/domains/{t.domain}",
            "/hosts",
            "/hosts/full",
            "/agents",
            "/audit",
            "/status",
            "/status/public",
            "/status/public/incidents",
            "/status/public/confirm?token=x",
            "/docs",
        ]
        # The four width/scheme runs at once, each in its own context (cookies, routes,
        # console): most of a page's time is networkidle's quiet 500 ms, which they share.
        found = await asyncio.gather(
            *(visit(browser, web, w, sch, pages, shots) for w in WIDTHS for sch in SCHEMES)
        )
        problems = [p for run in found for p in run]
        assert problems == [], "\n".join(sorted(set(problems)))


async def test_theme_toggle_title_count_and_folding(browser, database_url, tmp_path):
    path = write_config(tmp_path / "c.yaml", CONFIG)
    s = Seeder(database_url)
    seed(s, path)
    await s.flush()
    settings = load_settings(
        str(path),
        env={"TOCSIN_COOKIE_SECRET": "u" * 32, "TOCSIN_UNAUTHENTICATED_ACCESS": "all"},
    )
    async with web_server(database_url, settings) as web:
        context = await browser.new_context(color_scheme="dark")
        page = await context.new_page()
        await page.goto(web.url + "/")
        # The title and favicon count critical tasks; open mode still offers to log in.
        await expect(page).to_have_title("(1) Dashboard · Tocsin")
        assert "critical=1" in (await page.get_attribute("#favicon", "href") or "")
        await expect(page.locator("header .who a")).to_have_text("Log in")
        bg = "getComputedStyle(document.body).backgroundColor"
        dark = await page.evaluate(bg)
        await page.click("#theme-toggle")
        assert await page.evaluate("document.documentElement.dataset.theme") == "light"
        assert await page.evaluate(bg) != dark
        await page.reload()
        assert await page.evaluate("document.documentElement.dataset.theme") == "light"
        # Keyboard: the toggle is reachable and its focus visible.
        await page.keyboard.press("Tab")
        await page.keyboard.press("Tab")
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"
        # A folded domain stays folded across a live refresh.
        group = page.locator("tbody.domain-group").first
        await group.locator("button.fold").click()
        await expect(group.locator("tr.task").first).to_be_hidden()
        await page.evaluate("htmx.trigger('#live', 'sse:changed')")
        await page.wait_for_timeout(500)
        await expect(
            page.locator("tbody.domain-group").first.locator("tr.task").first
        ).to_be_hidden()
        # Heartbeat strips: one bar per result, coloured by severity, with the figures on hover.
        await page.locator("tbody.domain-group").first.locator("button.fold").click()
        beats = page.locator("tr.task .beats i")
        assert await beats.count() > 0
        cell = page.locator("tr.task.sev-warning .beats i.w").last
        await cell.hover()
        title = await cell.get_attribute("title")
        assert title and " UTC · warning (success) · " in title and title.endswith(" ms")
        await context.close()
