"""``general.ldap``: people log in against a real directory (slapd), as in Argos."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from services.web import authdb
from services.web.ldapauth import LdapSettings, check, search_filter
from services.web.settings import WebSettings, load_settings
from tests.slapd import PASSWORDS, READER, SUFFIX, slapd  # noqa: F401 (fixture)
from tests.test_web_pages import login
from tests.web_fixtures import add_user, web_server


def _ldap(url: str) -> LdapSettings:
    return LdapSettings(
        uri=url,
        user_tree=f"ou=users,{SUFFIX}",
        user_attr="uid",
        bind_dn=READER,
        bind_pwd=PASSWORDS["reader"],
        user_filter="(!(uid=bob))",
    )


def test_settings_read_argos_ldap_section(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "general:\n  frequency: 1m\n  ldap:\n    uri: ldap://h\n    user_tree: ou=u,dc=x\n"
        "    user_attr: uid\n    bind_dn: uid=r,dc=x\n    bind_pwd: pw\n"
        "    user_filter: '(!(uid=r))'\nwebsites: []\n"
    )
    assert load_settings(str(path), env={}).ldap == LdapSettings(
        "ldap://h", "ou=u,dc=x", "uid", "uid=r,dc=x", "pw", "(!(uid=r))"
    )


def test_the_user_name_cannot_widen_the_search() -> None:
    s = LdapSettings("ldap://h", "dc=x", "uid")
    assert search_filter(s, "*)(uid=*") == r"(&(uid=\2a\29\28uid=\2a))"


@pytest.mark.parametrize(
    ("user", "password", "ok"),
    [
        ("alice", "alice-pw", True),
        ("alice", "wrong", False),
        ("alice", "", False),  # a DN without password is an anonymous bind: it "succeeds"
        ("bob", "bob-pw", False),  # excluded by user_filter
        ("nobody", "x", False),
        ("*", "alice-pw", False),
    ],
)
def test_directory_check(slapd: str, user: str, password: str, ok: bool) -> None:  # noqa: F811
    assert check(_ldap(slapd), user, password) is ok


def test_an_unreachable_directory_refuses_without_crashing() -> None:
    assert check(_ldap("ldap://127.0.0.1:9"), "alice", "alice-pw") is False


async def test_login_page_against_slapd(slapd: str, database_url: str) -> None:  # noqa: F811
    await add_user(database_url, "ops", "s3cret")  # a Tocsin user: not used with LDAP
    settings = WebSettings(cookie_secret="t" * 32, ldap=_ldap(slapd))
    async with web_server(database_url, settings) as web, httpx.AsyncClient(base_url=web.url) as c:
        assert (await login(c, "ops", "s3cret")).status_code == 401
        assert (await login(c, "bob", "bob-pw")).status_code == 401
        assert (await login(c, "alice", "nope")).status_code == 401
        assert (await login(c, "alice", "alice-pw")).status_code == 303
        assert (await c.get("/", follow_redirects=False)).status_code == 200
        conn = await asyncpg.connect(database_url)
        try:
            await authdb.set_disabled(conn, "alice", True)
        finally:
            await conn.close()
        # Disabled here: the directory's yes is not enough, and the open session ends.
        assert (await c.get("/", follow_redirects=False)).status_code == 303
        async with httpx.AsyncClient(base_url=web.url) as fresh:
            assert (await login(fresh, "alice", "alice-pw")).status_code == 401
