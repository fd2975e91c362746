"""``tocsin projector [run|rebuild]`` and ``tocsin log backup|restore FILE``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from configuration.config import ConfigError, parse
from runtime import bus, cliopts
from services.projector.backup import BackupError, backup, restore
from services.projector.decoding import collect_rarely
from services.projector.rebuild import rebuild
from services.projector.service import ProjectorOptions, main


def register(sub: Any) -> dict[str, Callable[[Any], int]]:
    p = sub.add_parser(
        "projector",
        help="fold the event log into PostgreSQL",
        description="Fold EVENTS into the read models. `tocsin projector rebuild` "
        "replays the whole log into fresh tables and swaps them in.",
    )
    cliopts.nats(p)
    cliopts.db(p)
    cliopts.config(p, required=False)
    p.add_argument("action", nargs="?", choices=["run", "rebuild"], default="run")

    p = sub.add_parser(
        "log",
        help="back up or restore the event log (EVENTS)",
        description="`backup FILE`: a snapshot of EVENTS through JetStream's API. `restore "
        "FILE`: into a server without EVENTS; then `tocsin projector rebuild`.",
    )
    p.add_argument("action", choices=["backup", "restore"])
    p.add_argument("file")
    cliopts.nats(p)
    return {"projector": run_projector, "log": run_log}


def run_projector(args: argparse.Namespace) -> int:
    collect_rarely()
    if args.action == "rebuild":
        # On uvloop, as the services run (``cliopts.run``): asyncpg's and NATS's sockets.
        seq = uvloop.run(rebuild(args.nats_url, args.database_url))
        print(f"rebuilt read models up to event {seq}")
        return 0
    # recurring_tasks.max_results_age of the configuration bounds the results kept.
    try:
        age = parse(args.config).recurring.get("max_results_age") if args.config else None
    except (ConfigError, OSError) as exc:
        print(f"tocsin projector: {args.config}:\n{exc}", file=sys.stderr)
        return 2
    return cliopts.run(
        main(ProjectorOptions(args.nats_url, args.database_url, max_results_age=age))
    )


def run_log(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with bus.oneshot(args.nats_url, f"log-{args.action}") as nc:
            if args.action == "backup":
                return await backup(nc, Path(args.file))
            return await restore(nc, Path(args.file))

    try:
        seq = asyncio.run(go())
    except (BackupError, OSError, ValueError) as exc:
        print(f"tocsin log {args.action}: {exc}", file=sys.stderr)
        return 1
    done = "backed up" if args.action == "backup" else "restored"
    print(f"{done} EVENTS up to event {seq}: {args.file}")
    return 0
