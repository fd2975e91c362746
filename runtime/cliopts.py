"""Options every command shares (NATS, PostgreSQL, configuration file), each also read from
an environment variable so the same image runs anywhere with only its environment changed."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Coroutine
from typing import Any

import uvloop

from runtime import local
from runtime.waiting import Stopped

DEFAULT_NATS = "nats://127.0.0.1:14222"
DEFAULT_DB = "postgresql://postgres@127.0.0.1:15432/tocsin"


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


#: Said of both defaults: ``fill`` chooses, once the command line is read.
LOCAL = f"the system `tocsin dev` runs from $TOCSIN_DATA_DIR ({local.DEFAULT_DIR}), else"


def nats(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nats-url",
        default=env("NATS_URL"),
        help=f"NATS server(s), comma-separated (env NATS_URL; default: {LOCAL} {DEFAULT_NATS})",
    )


def db(p: argparse.ArgumentParser) -> None:
    # No %(default)s in the help: the URL of `tocsin dev`'s PostgreSQL holds its password.
    p.add_argument(
        "--database-url",
        default=env("DATABASE_URL"),
        help=f"PostgreSQL URL (env DATABASE_URL; default: {LOCAL} {DEFAULT_DB})",
    )


def fill(args: argparse.Namespace) -> None:
    """Give the command the NATS and PostgreSQL its user named none of (no option, no
    environment variable): those of the system ``tocsin dev`` runs from the data directory
    (its ports, its database password, and with ``--secure`` the admin's credentials, which
    every NATS connection reads from TOCSIN_NATS_CREDS), else the defaults."""
    wants_nats = getattr(args, "nats_url", "") is None
    wants_db = getattr(args, "database_url", "") is None
    if not (wants_nats or wants_db):
        return
    found = local.read(local.data_dir()) or local.Endpoints()
    if wants_nats:
        args.nats_url = found.nats_url or DEFAULT_NATS
        if found.nats_url and found.nats_creds and not env("TOCSIN_NATS_CREDS"):
            os.environ["TOCSIN_NATS_CREDS"] = found.nats_creds
    if wants_db:
        args.database_url = found.database_url or DEFAULT_DB


def config(p: argparse.ArgumentParser, required: bool = True) -> None:
    default = env("TOCSIN_CONFIG")
    p.add_argument(
        "--config",
        default=default,
        required=required and default is None,
        help="configuration file, Argos format (env TOCSIN_CONFIG)",
    )


def run(coro: Coroutine[Any, Any, Any]) -> int:
    """Run a service until ``coro`` returns, on uvloop: the services spend most of their CPU
    in the event loop's socket and callback machinery (NATS, aiohttp, asyncpg), which
    uvloop does in C (bench/drain.py: 6 to 14 % more checks per second). The web gets it from
    uvicorn, which picks uvloop when it is installed. Stopped before it reached NATS, it
    ends as asked: 0."""
    with contextlib.suppress(Stopped):
        uvloop.run(coro)
    return 0
