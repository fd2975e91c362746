"""Options every command shares (NATS, PostgreSQL, configuration file), each also read from
an environment variable so the same image runs anywhere with only its environment changed."""

from __future__ import annotations

import argparse
import os
from collections.abc import Coroutine
from typing import Any

import uvloop

DEFAULT_NATS = "nats://127.0.0.1:14222"
DEFAULT_DB = "postgresql://postgres@127.0.0.1:15432/tocsin"


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def nats(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nats-url",
        default=env("NATS_URL", DEFAULT_NATS),
        help="NATS server(s), comma-separated (env NATS_URL; default %(default)s)",
    )


def db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default=env("DATABASE_URL", DEFAULT_DB),
        help="PostgreSQL URL (env DATABASE_URL; default %(default)s)",
    )


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
    uvicorn, which picks uvloop when it is installed."""
    uvloop.run(coro)
    return 0
