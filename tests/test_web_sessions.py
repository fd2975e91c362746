"""Sessions and logins that hold: logout ends the session server-side, ``Secure`` follows
the scheme a trusted proxy reports, the login limit cannot be escaped by a forged address
nor used by strangers to lock a user out, argon2 runs off the event loop, and short
passwords are refused."""

from __future__ import annotations

import threading

import httpx
import pytest
from argon2 import PasswordHasher

from services.web import authdb
from services.web.auth import SESSION_COOKIE
from services.web.settings import WebSettings
from tests.test_web_auth import run_cli
from tests.test_web_pages import login
from tests.web_fixtures import add_user, web_server

PASSWORD = "correct horse"


async def test_logout_revokes_a_copied_cookie(database_url):
    await add_user(database_url, "ann", PASSWORD)
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        assert (await login(c, "ann", PASSWORD)).status_code == 303
        copied = c.cookies[SESSION_COOKIE]
        page = (await c.get("/")).text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        assert (await c.post("/logout", data={"csrf_token": token})).status_code == 303
        async with httpx.AsyncClient(base_url=web.url) as thief:
            thief.cookies.set(SESSION_COOKIE, copied)
            assert (await thief.get("/agents")).status_code == 303
            assert (await thief.get("/api/tasks")).status_code == 401


async def test_secure_flag_and_address_only_from_trusted_proxies(database_url):
    await add_user(database_url, "ann", PASSWORD)
    https = {"x-forwarded-proto": "https"}
    # By default no proxy is trusted, not even loopback: the headers change nothing.
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        page = await c.get("/login", headers=https)
        assert "secure" not in page.headers["set-cookie"].lower()
        for i in range(5):
            c.headers["x-forwarded-for"] = f"10.1.0.{i}"
            assert (await login(c, f"nobody{i}", "wrong")).status_code == 401
        c.headers["x-forwarded-for"] = "10.1.0.99"
        assert (await login(c, "ann", PASSWORD)).status_code == 429  # same real address
    trusted = WebSettings(cookie_secret="t" * 32, trusted_proxies=["127.0.0.1"])
    async with (
        web_server(database_url, trusted) as web,
        httpx.AsyncClient(base_url=web.url, headers=https) as c,
    ):
        page = await c.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        # httpx keeps Secure cookies for https only; hand them over as the browser would.
        c.cookies.set("tocsin_csrf", page.cookies["tocsin_csrf"])
        r = await login(c, "ann", PASSWORD)
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()


async def test_strangers_cannot_lock_a_user_out(database_url):
    await add_user(database_url, "ann", PASSWORD)
    trusted = WebSettings(cookie_secret="t" * 32, trusted_proxies=["127.0.0.1"])
    async with web_server(database_url, trusted) as web:
        async with httpx.AsyncClient(base_url=web.url) as home:
            home.headers["x-forwarded-for"] = "192.0.2.1"
            assert (await login(home, "ann", PASSWORD)).status_code == 303
        async with httpx.AsyncClient(base_url=web.url) as attacker:
            for i in range(12):
                attacker.headers["x-forwarded-for"] = f"198.51.100.{i // 3}"
                r = await login(attacker, "ann", f"guess{i}")
                assert r.status_code in (401, 429)
            # Guessing spread over addresses is stopped for the account…
            attacker.headers["x-forwarded-for"] = "198.51.100.200"
            assert (await login(attacker, "ann", PASSWORD)).status_code == 429
            # …and an address that failed too often is stopped whatever the account.
            attacker.headers["x-forwarded-for"] = "198.51.100.9"
            for _ in range(5):
                await login(attacker, "other", "wrong")
            assert (await login(attacker, "ann", PASSWORD)).status_code == 429
        async with httpx.AsyncClient(base_url=web.url) as home:
            home.headers["x-forwarded-for"] = "192.0.2.1"
            assert (await login(home, "ann", PASSWORD)).status_code == 303


async def test_password_hashing_runs_off_the_event_loop(database_url, monkeypatch):
    await add_user(database_url, "ann", PASSWORD)
    threads: list[threading.Thread] = []
    real = PasswordHasher.verify

    def verify(self: PasswordHasher, *args: object) -> bool:
        threads.append(threading.current_thread())
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PasswordHasher, "verify", verify)
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        assert (await login(c, "ann", "wrong")).status_code == 401
        assert (await login(c, "ann", PASSWORD)).status_code == 303
    loop_thread = threading.current_thread()
    assert len(threads) == 2 and all(t is not loop_thread for t in threads)


@pytest.mark.parametrize("action", ["add", "password"])
async def test_short_passwords_are_refused(database_url, monkeypatch, capsys, action):
    db = ("--database-url", database_url)
    if action == "password":
        await add_user(database_url, "ann", PASSWORD)
    code, _, err = await run_cli(
        monkeypatch, capsys, "user", action, "ann", "--password-stdin", *db, stdin="short\n"
    )
    assert code == 1 and f"at least {authdb.MIN_PASSWORD} characters" in err
