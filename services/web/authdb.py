"""Users, API tokens and the cookie secret: the web's own state, outside the read models.

These live in their own schema because the read models are rebuilt from the log
and swapped wholesale; accounts are not in the log and must survive that.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from runtime import db

AUTH_SCHEMA = "tocsin_auth"

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {AUTH_SCHEMA};
CREATE TABLE IF NOT EXISTS {AUTH_SCHEMA}.users (
    id bigserial PRIMARY KEY,
    name text UNIQUE NOT NULL,
    password_hash text NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    generation int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login timestamptz
);
CREATE TABLE IF NOT EXISTS {AUTH_SCHEMA}.api_tokens (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    digest text UNIQUE NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used timestamptz,
    revoked boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS {AUTH_SCHEMA}.sessions (
    id text PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES {AUTH_SCHEMA}.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {AUTH_SCHEMA}.known_addresses (
    user_id bigint NOT NULL REFERENCES {AUTH_SCHEMA}.users (id) ON DELETE CASCADE,
    address text NOT NULL,
    last_login timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, address)
);
-- read: the API's GETs; write: also what acts ("check now"). Tokens made before scopes read.
ALTER TABLE {AUTH_SCHEMA}.api_tokens ADD COLUMN IF NOT EXISTS scope text NOT NULL DEFAULT 'read';
CREATE TABLE IF NOT EXISTS {AUTH_SCHEMA}.secrets (
    name text PRIMARY KEY,
    value text NOT NULL
);
"""

T = TypeVar("T")
_hasher = PasswordHasher()
#: Shorter passwords are refused when set: argon2 slows guessing, it cannot make "abc" strong.
MIN_PASSWORD = 10
#: Verified against when the user does not exist, so timing does not reveal user names.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class UserError(Exception):
    """A user operation that cannot be done (unknown user, duplicate name, empty password)."""


@dataclass
class User:
    id: int
    name: str
    disabled: bool
    generation: int
    created_at: datetime
    last_login: datetime | None


async def ensure(conn: asyncpg.Connection) -> None:
    # Several web processes may start together; CREATE IF NOT EXISTS races otherwise.
    await db.ensure_ddl(conn, AUTH_SCHEMA, DDL, 7361050)


async def cookie_secret(conn: asyncpg.Connection) -> str:
    """One random secret shared by every web process, made on first use."""
    await conn.execute(
        f"INSERT INTO {AUTH_SCHEMA}.secrets VALUES ('cookie', $1) ON CONFLICT DO NOTHING",
        secrets.token_urlsafe(48),
    )
    return str(
        await conn.fetchval(f"SELECT value FROM {AUTH_SCHEMA}.secrets WHERE name = 'cookie'")
    )


def _row(r: asyncpg.Record) -> User:
    return User(
        r["id"], r["name"], r["disabled"], r["generation"], r["created_at"], r["last_login"]
    )


_COLS = "id, name, disabled, generation, created_at, last_login"


def check_password(password: str) -> None:
    """Refuse a password too short to resist guessing (at ``tocsin user add`` and
    ``tocsin user password``)."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")


#: argon2 costs tens of milliseconds and 64 MiB by design, on several lanes: never on the
#: event loop, and two at a time, so that a burst of logins queues here instead of taking
#: every core from the loop that serves the pages.
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


async def _in_hashing_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, fn, *args)


async def _hash(password: str) -> str:
    return await _in_hashing_thread(_hasher.hash, password)


async def add_user(conn: asyncpg.Connection, name: str, password: str) -> User:
    if not name or not password:
        raise UserError("a user needs a name and a non-empty password")
    try:
        r = await conn.fetchrow(
            f"INSERT INTO {AUTH_SCHEMA}.users (name, password_hash) VALUES ($1, $2) "
            f"RETURNING {_COLS}",
            name,
            await _hash(password),
        )
    except asyncpg.UniqueViolationError:
        raise UserError(f"user {name!r} already exists") from None
    return _row(r)


async def _update(conn: asyncpg.Connection, name: str, sets: str, *args: object) -> None:
    # Bumping the generation ends the user's open sessions.
    status = await conn.execute(
        f"UPDATE {AUTH_SCHEMA}.users SET {sets}, generation = generation + 1 WHERE name = $1",
        name,
        *args,
    )
    if status.endswith(" 0"):
        raise UserError(f"no user {name!r}")


async def set_password(conn: asyncpg.Connection, name: str, password: str) -> None:
    if not password:
        raise UserError("the password must not be empty")
    await _update(conn, name, "password_hash = $2", await _hash(password))


async def set_disabled(conn: asyncpg.Connection, name: str, disabled: bool) -> None:
    await _update(conn, name, "disabled = $2", disabled)


async def delete_user(conn: asyncpg.Connection, name: str) -> None:
    status = await conn.execute(f"DELETE FROM {AUTH_SCHEMA}.users WHERE name = $1", name)
    if status.endswith(" 0"):
        raise UserError(f"no user {name!r}")


async def list_users(conn: asyncpg.Connection) -> list[User]:
    return [
        _row(r) for r in await conn.fetch(f"SELECT {_COLS} FROM {AUTH_SCHEMA}.users ORDER BY name")
    ]


async def get_user(conn: asyncpg.Connection, user_id: int) -> User | None:
    r = await conn.fetchrow(f"SELECT {_COLS} FROM {AUTH_SCHEMA}.users WHERE id = $1", user_id)
    return _row(r) if r else None


async def authenticate(conn: asyncpg.Connection, name: str, password: str) -> User | None:
    """The user if the password matches and the account is enabled; None otherwise."""
    r = await conn.fetchrow(
        f"SELECT {_COLS}, password_hash FROM {AUTH_SCHEMA}.users WHERE name = $1", name
    )
    try:
        await _in_hashing_thread(_hasher.verify, r["password_hash"] if r else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if r is None or r["disabled"]:
        return None  # checked after the hash so a disabled account costs the same time
    if _hasher.check_needs_rehash(r["password_hash"]):
        await conn.execute(
            f"UPDATE {AUTH_SCHEMA}.users SET password_hash = $2 WHERE id = $1",
            r["id"],
            await _hash(password),
        )
    await conn.execute(f"UPDATE {AUTH_SCHEMA}.users SET last_login = now() WHERE id = $1", r["id"])
    return _row(r)


async def open_session(conn: asyncpg.Connection, user: User, address: str, lifetime: float) -> str:
    """A new server-side session (its id goes in the signed cookie), and the address
    remembered as one this user logs in from."""
    sid = secrets.token_urlsafe(24)
    async with conn.transaction():
        await conn.execute(f"DELETE FROM {AUTH_SCHEMA}.sessions WHERE expires_at < now()")
        await conn.execute(
            f"INSERT INTO {AUTH_SCHEMA}.sessions (id, user_id, expires_at) "
            "VALUES ($1, $2, now() + make_interval(secs => $3))",
            sid,
            user.id,
            lifetime,
        )
        await conn.execute(
            f"INSERT INTO {AUTH_SCHEMA}.known_addresses (user_id, address) VALUES ($1, $2) "
            "ON CONFLICT (user_id, address) DO UPDATE SET last_login = now()",
            user.id,
            address,
        )
    return sid


async def session_user(conn: asyncpg.Connection, sid: str, user_id: int) -> User | None:
    """The session's user while the session is open (not logged out, not expired)."""
    r = await conn.fetchrow(
        f"SELECT {', '.join('u.' + c for c in _COLS.split(', '))} "
        f"FROM {AUTH_SCHEMA}.sessions s JOIN {AUTH_SCHEMA}.users u ON u.id = s.user_id "
        "WHERE s.id = $1 AND s.user_id = $2 AND s.expires_at > now()",
        sid,
        user_id,
    )
    return _row(r) if r else None


async def extend_session(conn: asyncpg.Connection, sid: str, lifetime: float) -> None:
    await conn.execute(
        f"UPDATE {AUTH_SCHEMA}.sessions SET expires_at = now() + make_interval(secs => $2) "
        "WHERE id = $1",
        sid,
        lifetime,
    )


async def close_session(conn: asyncpg.Connection, sid: str) -> None:
    await conn.execute(f"DELETE FROM {AUTH_SCHEMA}.sessions WHERE id = $1", sid)


async def known_address(conn: asyncpg.Connection, name: str, address: str) -> bool:
    """Whether this user has logged in from this address before."""
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {AUTH_SCHEMA}.known_addresses k "
            f"JOIN {AUTH_SCHEMA}.users u ON u.id = k.user_id WHERE u.name = $1 AND k.address = $2)",
            name,
            address,
        )
    )


#: The password hash of users a directory (LDAP) vouches for: no password matches it.
EXTERNAL = "!external"


async def external_user(conn: asyncpg.Connection, name: str) -> User | None:
    """The user a directory has just authenticated, created on first login so sessions can
    name it; None when disabled here (disabling still shuts a directory user out)."""
    r = await conn.fetchrow(
        f"""INSERT INTO {AUTH_SCHEMA}.users (name, password_hash) VALUES ($1, $2)
            ON CONFLICT (name) DO UPDATE SET last_login = now()
            RETURNING {_COLS}""",
        name,
        EXTERNAL,
    )
    return None if r is None or r["disabled"] else _row(r)


def _digest(token: str) -> str:
    # Tokens are long random strings: a plain SHA-256 suffices (no dictionary to guard against).
    return hashlib.sha256(token.encode()).hexdigest()


SCOPES = ("read", "write")


@dataclass
class Token:
    name: str
    scope: str


async def create_token(conn: asyncpg.Connection, name: str, scope: str = "read") -> str:
    if scope not in SCOPES:
        raise UserError(f"scope {scope!r}: one of {', '.join(SCOPES)}")
    token = "tct_" + secrets.token_urlsafe(32)
    await conn.execute(
        f"INSERT INTO {AUTH_SCHEMA}.api_tokens (name, digest, scope) VALUES ($1, $2, $3)",
        name,
        _digest(token),
        scope,
    )
    return token


async def check_token(conn: asyncpg.Connection, token: str) -> Token | None:
    """The token's name and scope when it is valid and not revoked."""
    r = await conn.fetchrow(
        f"UPDATE {AUTH_SCHEMA}.api_tokens SET last_used = now() "
        "WHERE digest = $1 AND NOT revoked RETURNING name, scope",
        _digest(token),
    )
    return Token(r["name"], r["scope"]) if r else None


async def list_tokens(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT id, name, scope, created_at, last_used, revoked FROM {AUTH_SCHEMA}.api_tokens "
        "ORDER BY id"
    )


async def revoke_token(conn: asyncpg.Connection, token_id: int) -> None:
    status = await conn.execute(
        f"UPDATE {AUTH_SCHEMA}.api_tokens SET revoked = true WHERE id = $1", token_id
    )
    if status.endswith(" 0"):
        raise UserError(f"no token {token_id}")
