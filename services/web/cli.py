"""``tocsin user …``, ``tocsin token …`` and ``tocsin nagios``: a CLI plug-in (see services.cli)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import uvicorn

from configuration.yamlsource import ConfigError
from readmodel import SCHEMA
from runtime import cliopts, db
from runtime.reach import Unreachable
from services.web import authdb, queries
from services.web.app import create_app
from services.web.settings import load_settings, server_options


def register(sub: Any) -> dict[str, Callable[[Any], int]]:
    p = sub.add_parser(
        "web",
        help="serve the dashboard and the JSON API",
        description="Serve the dashboard, the JSON API and live updates.",
    )
    cliopts.db(p)
    p.add_argument(
        "--host",
        default=cliopts.env("TOCSIN_HOST", "127.0.0.1"),
        help="listen address (env TOCSIN_HOST)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(cliopts.env("TOCSIN_PORT", "8000") or 8000),
        help="listen port (env TOCSIN_PORT)",
    )

    p = sub.add_parser("user", help="manage the web's users (argon2 hashes in PostgreSQL)")
    usub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, help_ in (
        ("add", "create a user"),
        ("password", "change a user's password (ends their sessions)"),
    ):
        u = usub.add_parser(action, help=help_)
        u.add_argument("name")
        u.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of stdin instead of asking",
        )
        cliopts.db(u)
    for action, help_ in (
        ("disable", "refuse the user's logins and end their sessions"),
        ("enable", "allow the user to log in again"),
        ("delete", "remove the user"),
    ):
        u = usub.add_parser(action, help=help_)
        u.add_argument("name")
        cliopts.db(u)
    cliopts.db(usub.add_parser("list", help="list users"))

    p = sub.add_parser("token", help="API tokens for scripts (Authorization: Bearer …)")
    tsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = tsub.add_parser("create", help="create a token and print it (shown only once)")
    t.add_argument("name", nargs="?", default="api", help="what the token is for")
    t.add_argument(
        "--scope",
        choices=authdb.SCOPES,
        default="read",
        help="read: the API's GETs (default); write: also 'check now'",
    )
    cliopts.db(t)
    cliopts.db(tsub.add_parser("list", help="list tokens"))
    t = tsub.add_parser("revoke", help="revoke a token by its id")
    t.add_argument("id", type=int)
    cliopts.db(t)

    p = sub.add_parser(
        "nagios",
        help="one status line and a Nagios exit code, as Argos's",
        description="Print a Nagios/Icinga plugin line with performance data; "
        "exit 0 (all ok), 1 (warning) or 2 (critical or unknown).",
    )
    cliopts.db(p)
    return {"web": run_web, "user": cmd_user, "token": cmd_token, "nagios": cmd_nagios}


async def _with_db(url: str, fn: Callable[[asyncpg.Connection], Awaitable[int]]) -> int:
    conn = await db.connect_once(url)
    try:
        await authdb.ensure(conn)
        return await fn(conn)
    finally:
        await conn.close()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != first:
        raise authdb.UserError("the passwords differ")
    return first


def cmd_user(args: argparse.Namespace) -> int:
    async def run(conn: asyncpg.Connection) -> int:
        a = args.action
        if a in ("add", "password"):
            password = _password(args)
            authdb.check_password(password)
            if a == "add":
                await authdb.add_user(conn, args.name, password)
            else:
                await authdb.set_password(conn, args.name, password)
        elif a in ("disable", "enable"):
            await authdb.set_disabled(conn, args.name, a == "disable")
        elif a == "delete":
            await authdb.delete_user(conn, args.name)
        else:
            for u in await authdb.list_users(conn):
                state = "disabled" if u.disabled else "enabled"
                last = u.last_login.isoformat(timespec="seconds") if u.last_login else "never"
                print(f"{u.name}\t{state}\tlast login {last}")
            return 0
        print(f"user {args.name}: {a} done")
        return 0

    try:
        return asyncio.run(_with_db(args.database_url, run))
    except authdb.UserError as exc:
        print(f"tocsin user: {exc}", file=sys.stderr)
        return 1


def cmd_token(args: argparse.Namespace) -> int:
    async def run(conn: asyncpg.Connection) -> int:
        if args.action == "create":
            print(await authdb.create_token(conn, args.name, args.scope))
        elif args.action == "revoke":
            await authdb.revoke_token(conn, args.id)
            print(f"token {args.id} revoked")
        else:
            for r in await authdb.list_tokens(conn):
                used = r["last_used"].isoformat(timespec="seconds") if r["last_used"] else "never"
                print(
                    f"{r['id']}\t{r['name']}\t{r['scope']}\t"
                    f"{'revoked' if r['revoked'] else 'active'}\t"
                    f"last used {used}"
                )
        return 0

    try:
        return asyncio.run(_with_db(args.database_url, run))
    except authdb.UserError as exc:
        print(f"tocsin token: {exc}", file=sys.stderr)
        return 1


def nagios_report(counts: dict[str, int]) -> tuple[int, str]:
    """Argos's ``server nagios`` line and exit code (2 for unknown too, as Argos), from task
    counts per severity. Unlike Argos 0.10.3, the OK line carries the figures, not the
    literal text ``{stats}``."""
    ok, warning = counts.get("ok", 0), counts.get("warning", 0)
    critical, unknown = counts.get("critical", 0), counts.get("unknown", 0)
    perf = f"ok={ok}; warning={warning}; critical={critical}; unknown={unknown};"
    if critical and unknown:
        code, text = (
            2,
            f"CRITICAL/UNKNOWN — {critical} sites are in critical state "
            f"and {unknown} sites are in unknown state",
        )
    elif critical:
        code, text = 2, f"CRITICAL — {critical} sites are in critical state"
    elif unknown:
        code, text = 2, f"UNKNOWN — {unknown} sites are in unknown state"
    elif warning:
        code, text = 1, f"WARNING — {warning} sites are in warning state"
    elif pending := counts.get("pending", 0):
        # Not checked yet (right after a start, a new task) is not "ok": Nagios's UNKNOWN.
        code, text = 3, f"UNKNOWN — {pending} tasks are pending, not checked yet"
    else:
        code, text = 0, "OK — All sites are ok"
    return code, f"{text}|{perf}"


def cmd_nagios(args: argparse.Namespace) -> int:
    async def run() -> dict[str, int]:
        conn = await db.connect_once(args.database_url, server_settings={"search_path": SCHEMA})
        try:
            return await queries.counts(conn)
        finally:
            await conn.close()

    try:
        counts = asyncio.run(run())
    except (Unreachable, OSError, asyncpg.PostgresError) as exc:
        # Nagios reads 3 as UNKNOWN: the monitor itself could not be asked.
        print(f"UNKNOWN — cannot read Tocsin's database: {exc}")
        return 3
    code, line = nagios_report(counts)
    print(line)
    return code


def run_web(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except (ConfigError, ValueError, OSError) as exc:
        # As the scheduler, notifier and projector: no start on a file that does not read.
        print(exc, file=sys.stderr)
        return 2
    # Open pages hold a live (SSE) stream: without a grace limit, they would hold a stop forever.
    uvicorn.run(
        create_app(args.database_url, settings),
        **server_options(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    return 0
