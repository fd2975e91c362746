"""``tocsin projector [run|rebuild]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from configuration.config import ConfigError, parse
from runtime import cliopts
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
    return {"projector": run_projector}


def run_projector(args: argparse.Namespace) -> int:
    if args.action == "rebuild":
        seq = asyncio.run(rebuild(args.nats_url, args.database_url))
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
