"""``tocsin scheduler``, ``tocsin config check|apply|show|history`` and ``tocsin shards``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from checks import request
from configuration.config import ConfigError
from configuration.inforce import who
from events import control
from events.streams import MAX_SHARDS, Tuning
from runtime import bus, cliopts
from services.scheduler import configcli, heartbeatcli, shardscli
from services.scheduler.layout import LayoutConflict
from services.scheduler.shards import main
from services.scheduler.state import SchedulerOptions


def register(sub: Any) -> dict[str, Callable[[Any], int]]:
    p = sub.add_parser(
        "scheduler",
        help="turn the configuration into check requests; judge",
        description="Run the configuration in force in the log (the file seeds an empty "
        "log, and is applied again on SIGHUP like `tocsin config apply`), publish check "
        "requests when due, judge completions into severities.",
    )
    cliopts.nats(p)
    cliopts.config(p)
    p.add_argument(
        "--ack-wait",
        type=float,
        default=30.0,
        help="seconds an agent has before a request is redelivered",
    )
    p.add_argument(
        "--max-deliver", type=int, default=5, help="deliveries before a request is dead-lettered"
    )
    p.add_argument(
        "--check-now-every",
        type=float,
        default=request.ON_DEMAND_EVERY,
        help="'check now' runs a task at most once per this many seconds (default %(default)s)",
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=int(cliopts.env("TOCSIN_REPLICAS", "1") or 1),
        help="JetStream replicas of the streams (env TOCSIN_REPLICAS)",
    )
    p.add_argument(
        "--shards",
        type=_shards,
        default=1,
        help="shards the task groups hash into, shared by the scheduler replicas running "
        f"with the same number (1 to {MAX_SHARDS}; 1: one dispatches, the others stand by)",
    )

    p = sub.add_parser("config", help="check, apply or list configurations")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = csub.add_parser("check", help="validate a file: exit 0 and a summary, or 2 and errors")
    c.add_argument("file")
    c = csub.add_parser("apply", help="publish a configuration's diff to the log")
    c.add_argument("file")
    cliopts.nats(c)
    c = csub.add_parser("show", help="print the configuration in force (from the log)")
    cliopts.nats(c)
    c = csub.add_parser("history", help="list past applications from the log")
    cliopts.nats(c)

    p = sub.add_parser(
        "check-now",
        help="run a task (or every task of a domain) now, through the agents and the judge",
        description="Ask the scheduler in charge to run a task's request group (or every "
        "group of a domain) right away, on every location of it. The schedule is not moved. "
        "Rate-limited (scheduler --check-now-every): a second ask within the limit is not "
        "queued again.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("task", nargs="?", help="task id (see /api/tasks)")
    what.add_argument("--domain", help="every task of this domain")
    cliopts.nats(p)
    heartbeatcli.add_parser(sub)
    p = sub.add_parser(
        "shards",
        help="which scheduler replica holds which shard (from the leases)",
        description="List the scheduler replicas alive (host and pid) and, for each shard, "
        "the replica holding its lease; a shard held by none is said so.",
    )
    cliopts.nats(p)
    return {
        "shards": shardscli.run,
        "scheduler": run_scheduler,
        "config": run_config,
        "heartbeat": heartbeatcli.new,
        "check-now": run_check_now,
    }


def _shards(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_SHARDS}")
    return n


def run_scheduler(args: argparse.Namespace) -> int:
    tuning = Tuning(replicas=args.replicas, ack_wait=args.ack_wait, max_deliver=args.max_deliver)
    opts = SchedulerOptions(
        args.nats_url,
        args.config,
        tuning,
        check_now_every=args.check_now_every,
        shards=args.shards,
    )
    try:
        return cliopts.run(main(opts))
    except (ConfigError, LayoutConflict) as exc:
        print(exc, file=sys.stderr)
        return 2


def run_config(args: argparse.Namespace) -> int:
    actions = {
        "check": configcli.check,
        "apply": configcli.apply,
        "show": configcli.show,
        "history": configcli.history,
    }
    return actions[args.action](args)


def run_check_now(args: argparse.Namespace) -> int:
    async def go() -> list[control.Asked]:
        async with bus.oneshot(args.nats_url, "check-now") as nc:
            ask = control.CheckNow(by=who(), task=args.task, domain=args.domain)
            return await request.ask_now(nc, ask)

    try:
        asked = asyncio.run(go())
    except request.CheckNowError as exc:
        print(f"tocsin check-now: {exc}", file=sys.stderr)
        return 2
    for a in asked:
        state = "queued" if a.queued else "already queued (rate limit)"
        print(f"{a.request}  {a.location}  {state}")
    return 0
