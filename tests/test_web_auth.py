"""Access: users and their CLI, sessions, CSRF, rate limiting, unauthenticated_access,
API tokens, and ``tocsin nagios``."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

import httpx
import pytest

from services import cli
from services.web.auth import SESSION_COOKIE
from services.web.cli import nagios_report
from services.web.settings import WebSettings, load_settings
from tests.test_web_pages import login, seed
from tests.web_fixtures import add_user, web_server


async def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    # The CLI runs its own event loop, as from a shell: give it a thread.
    code = await asyncio.to_thread(cli.main, list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_user_cli_and_disabled_user_refused(database_url, monkeypatch, capsys):
    db = ("--database-url", database_url)
    assert (
        await run_cli(
            monkeypatch,
            capsys,
            "user",
            "add",
            "alice",
            "--password-stdin",
            *db,
            stdin="first-password\n",
        )
    )[0] == 0
    code, _, err = await run_cli(
        monkeypatch,
        capsys,
        "user",
        "add",
        "alice",
        "--password-stdin",
        *db,
        stdin="x-password-long\n",
    )
    assert code == 1 and "already exists" in err
    async with web_server(database_url) as web:
        async with httpx.AsyncClient(base_url=web.url) as c:
            r = await login(c, "alice", "first-password", remember=True)
            assert r.status_code == 303 and r.headers["location"] == "/"
            cookie = r.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie
            assert (await c.get("/agents")).status_code == 200
            # Disabling ends the open session at once, and the login is refused.
            assert (await run_cli(monkeypatch, capsys, "user", "disable", "alice", *db))[0] == 0
            assert (await c.get("/agents")).status_code == 303
            refused = await login(c, "alice", "first-password")
            assert refused.status_code == 401 and SESSION_COOKIE not in refused.headers.get(
                "set-cookie", ""
            )
            assert (await run_cli(monkeypatch, capsys, "user", "enable", "alice", *db))[0] == 0
            assert (await login(c, "alice", "first-password")).status_code == 303
            assert (
                await run_cli(
                    monkeypatch,
                    capsys,
                    "user",
                    "password",
                    "alice",
                    "--password-stdin",
                    *db,
                    stdin="second-password\n",
                )
            )[0] == 0
            assert (await c.get("/agents")).status_code == 303  # password change: log in again
            assert (await login(c, "alice", "first-password")).status_code == 401
            assert (await login(c, "alice", "second-password")).status_code == 303
            no_remember = (await login(c, "alice", "second-password")).headers["set-cookie"]
            assert "Max-Age" not in no_remember.split("tocsin_session=")[1].split(",")[0]
    code, out, _ = await run_cli(monkeypatch, capsys, "user", "list", *db)
    assert code == 0 and out.startswith("alice\tenabled")
    assert (await run_cli(monkeypatch, capsys, "user", "delete", "alice", *db))[0] == 0
    assert (await run_cli(monkeypatch, capsys, "user", "delete", "alice", *db))[0] == 1


async def test_login_needs_csrf_is_rate_limited_and_redirects_locally(database_url):
    await add_user(database_url, "bob", "right")
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        first = await c.get("/tasks/x?a=1")
        assert (
            first.status_code == 303 and first.headers["location"] == "/login?next=/tasks/x%3Fa%3D1"
        )
        await c.get("/login")
        forged = await c.post(
            "/login", data={"username": "bob", "password": "right", "csrf_token": "forged"}
        )
        assert forged.status_code == 403
        other = httpx.AsyncClient(base_url=web.url)  # a token from another browser is refused
        await other.get("/login")
        page = (await other.get("/login")).text
        await other.aclose()
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert (
            await c.post(
                "/login", data={"username": "bob", "password": "right", "csrf_token": token}
            )
        ).status_code == 403
        for _ in range(5):
            assert (await login(c, "bob", "wrong")).status_code == 401
        limited = await login(c, "bob", "right")
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        # Logout needs the token too.
        assert (await c.post("/logout", data={"csrf_token": "x"})).status_code == 403
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        page = (await c.get("/login")).text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        r = await c.post(
            "/login",
            data={
                "username": "bob",
                "password": "right",
                "csrf_token": token,
                "next": "//evil.example/",
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/"
        page = (await c.get("/")).text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        out = await c.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303
        assert (await c.get("/")).status_code == 303


async def test_unauthenticated_access_levels(database_url, tmp_path: Path):
    await seed(database_url)
    dash = WebSettings(cookie_secret="s" * 32, unauthenticated_access="dashboard")
    async with web_server(database_url, dash) as web, httpx.AsyncClient(base_url=web.url) as c:
        assert (await c.get("/")).status_code == 200
        assert (await c.get("/agents")).status_code == 303
        assert (await c.get("/api/tasks")).status_code == 401
        hx = await c.get("/agents", headers={"HX-Request": "true"})
        assert hx.status_code == 401 and hx.headers["HX-Redirect"].startswith("/login")
    every = WebSettings(cookie_secret="s" * 32, unauthenticated_access="all")
    async with web_server(database_url, every) as web, httpx.AsyncClient(base_url=web.url) as c:
        for path in ("/", "/agents", "/audit", "/api/tasks", "/metrics"):
            assert (await c.get(path)).status_code == 200, path
    config = tmp_path / "argos.yaml"
    config.write_text(
        "general:\n  frequency: 5m\n  unauthenticated_access: dashboard\n"
        "  session_duration: 10\n  cookie_secret: abc\nwebsites: []\n"
    )
    s = load_settings(env={"TOCSIN_CONFIG": str(config)})
    assert (s.unauthenticated_access, s.session_duration, s.cookie_secret) == (
        "dashboard",
        600.0,
        "abc",
    )
    s = load_settings(env={"TOCSIN_CONFIG": str(config), "TOCSIN_UNAUTHENTICATED_ACCESS": "all"})
    assert s.unauthenticated_access == "all"


async def test_token_cli_and_nagios(database_url, monkeypatch, capsys):
    await seed(database_url)
    db = ("--database-url", database_url)
    code, token, _ = await run_cli(monkeypatch, capsys, "token", "create", "ci", *db)
    assert code == 0 and token.startswith("tct_")
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        h = {"Authorization": f"Bearer {token.strip()}"}
        assert (await c.get("/api/agents", headers=h)).status_code == 200
        code, out, _ = await run_cli(monkeypatch, capsys, "token", "list", *db)
        assert "\tci\tread\tactive" in out  # a token reads unless made with --scope write
        assert (await run_cli(monkeypatch, capsys, "token", "revoke", out.split("\t")[0], *db))[
            0
        ] == 0
        assert (await c.get("/api/agents", headers=h)).status_code == 401
    code, out, _ = await run_cli(monkeypatch, capsys, "nagios", *db)
    assert code == 2
    assert out.strip() == (
        "CRITICAL — 1 sites are in critical state|ok=1; warning=1; critical=1; unknown=0;"
    )


def test_nagios_report_as_argos():
    assert nagios_report({"ok": 3}) == (
        0,
        "OK — All sites are ok|ok=3; warning=0; critical=0; unknown=0;",
    )
    assert nagios_report({"ok": 1, "warning": 2})[0] == 1
    assert nagios_report({"unknown": 1})[1].startswith("UNKNOWN — 1 sites")
    assert nagios_report({"critical": 1, "unknown": 1})[1].startswith("CRITICAL/UNKNOWN")


def test_nagios_pending_is_not_ok():
    assert nagios_report({"ok": 0, "pending": 4}) == (
        3,
        "UNKNOWN — 4 tasks are pending, not checked yet|ok=0; warning=0; critical=0; unknown=0;",
    )
    assert nagios_report({"ok": 2, "pending": 1})[0] == 3
    assert nagios_report({"warning": 1, "pending": 1})[0] == 1
