"""Logging in against LDAP, as Argos's ``general.ldap`` does.

Bind as ``bind_dn`` (anonymously without one), search ``user_tree`` for the one
entry whose ``user_attr`` is the user name and that ``user_filter`` admits, then
bind as that entry with the password given. Unlike Argos, an empty password is
refused (an LDAP bind with a DN and no password is an anonymous bind, which
succeeds), and no ``user_filter`` means no extra filter (Argos writes "None"
into the filter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from runtime.logs import Log

log = Log("tocsin.web.ldap")
TIMEOUT = 10


@dataclass(frozen=True)
class LdapSettings:
    uri: str
    user_tree: str
    user_attr: str
    bind_dn: str | None = None
    bind_pwd: str | None = None
    user_filter: str | None = None

    @classmethod
    def from_general(cls, raw: Any) -> LdapSettings | None:
        if not isinstance(raw, dict):
            return None
        missing = [k for k in ("uri", "user_tree", "user_attr") if not raw.get(k)]
        if missing:
            raise ValueError(f"general.ldap: missing {', '.join(missing)}")
        return cls(
            uri=str(raw["uri"]),
            user_tree=str(raw["user_tree"]),
            user_attr=str(raw["user_attr"]),
            bind_dn=raw.get("bind_dn"),
            bind_pwd=raw.get("bind_pwd"),
            user_filter=raw.get("user_filter"),
        )


def search_filter(s: LdapSettings, username: str) -> str:
    own = s.user_filter or ""
    return f"(&({s.user_attr}={escape_filter_chars(username)}){own})"


def check(s: LdapSettings, username: str, password: str) -> bool:
    """Whether the directory knows this user with this password (blocking: run in a thread)."""
    if not username or not password:
        return False
    server = ldap3.Server(s.uri, connect_timeout=TIMEOUT)
    try:
        with ldap3.Connection(
            server, s.bind_dn, s.bind_pwd, auto_bind=True, receive_timeout=TIMEOUT
        ) as search:
            search.search(
                s.user_tree,
                search_filter(s, username),
                search_scope=ldap3.SUBTREE,
                attributes=[s.user_attr],
                size_limit=2,
            )
            entries = list(search.entries)
        if len(entries) != 1:
            return False
        user = ldap3.Connection(server, entries[0].entry_dn, password, receive_timeout=TIMEOUT)
        try:
            return bool(user.bind())
        finally:
            user.unbind()
    except LDAPException as exc:
        log.error("LDAP login failed", uri=s.uri, error=str(exc))
        return False
