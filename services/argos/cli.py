"""``tocsin argos`` (serve Argos 0.10.3 agents a location's checks) and
``tocsin import argos`` (an Argos database's history into the log)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from configuration.config import ConfigError, parse
from runtime import bus, cliopts
from security.client import add_options as add_security_options
from security.client import from_args
from services.argos.history import import_history
from services.argos.service import Gateway, GatewayOptions, log


def register(sub: Any) -> dict[str, Callable[[Any], int]]:
    p = sub.add_parser(
        "argos",
        help="let Argos agents run a location's checks (Argos's /api/tasks and /api/results)",
        description="Serve GET /api/tasks and POST /api/results as Argos 0.10.3 does, so that "
        "deployed Argos agents (argos agent http://HOST:PORT TOKEN) work a location's share "
        "of the checks. Tokens: service.secrets of the configuration file.",
    )
    cliopts.nats(p)
    cliopts.config(p)
    p.add_argument(
        "--location",
        default=cliopts.env("TOCSIN_LOCATION", "default"),
        help="location whose requests Argos agents take (env TOCSIN_LOCATION)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8300, help="port to listen on")
    p.add_argument(
        "--lease",
        type=float,
        default=None,
        help="seconds an agent may hold a request at most before it is given back; default: "
        "recurring_tasks.max_lock_seconds of the configuration, else 100. A request is given "
        "back sooner when the scheduler would otherwise give up on it (frequencies under 100s)",
    )
    add_security_options(p)
    imp = sub.add_parser("import", help="import another monitor's history into the log")
    isub = imp.add_subparsers(dest="source", required=True, metavar="SOURCE")
    a = isub.add_parser(
        "argos",
        help="an Argos database's results, at their original times (idempotent)",
        description="Read the tasks and results tables of an Argos 0.10.3 database and publish "
        "each result as history of the configured task it matches. Run it after `tocsin "
        "config apply` and before the scheduler first judges those tasks.",
    )
    a.add_argument(
        "--database-url", required=True, help="Argos's general.db.url (PostgreSQL or SQLite)"
    )
    a.add_argument(
        "--timezone",
        default=None,
        help="zone of Argos's server clock (its times are local, without a zone); "
        "default: this machine's",
    )
    cliopts.nats(a)
    cliopts.config(a)
    return {"argos": run, "import": run_import}


async def main(opts: GatewayOptions) -> None:
    gateway = Gateway(opts)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, gateway.stop)
    # The file again, for its tokens: an agent's new token works without a restart.
    loop.add_signal_handler(signal.SIGHUP, gateway.reload)
    try:
        await gateway.run()
    except OSError as exc:
        log.error("cannot serve Argos agents", host=opts.host, port=opts.port, error=str(exc))
        raise SystemExit(1) from None


def run(args: argparse.Namespace) -> int:
    return cliopts.run(
        main(
            GatewayOptions(
                args.nats_url,
                args.config,
                args.location,
                args.host,
                args.port,
                args.lease,
                security=from_args(args),
                js_domain=args.js_domain,
            )
        )
    )


def run_import(args: argparse.Namespace) -> int:
    try:
        configured = parse(args.config).tasks
    except (ConfigError, OSError) as exc:
        print(f"tocsin import argos: {args.config}:\n{exc}", file=sys.stderr)
        return 2
    tz = ZoneInfo(args.timezone) if args.timezone else datetime.now().astimezone().tzinfo
    assert tz is not None

    async def go() -> int:
        async with bus.oneshot(args.nats_url, "import-argos") as nc:
            report = await import_history(nc.jetstream(), args.database_url, configured, tz)
        print(
            f"{report.tasks} Argos tasks, {report.matched} matched a configured task; "
            f"{report.published} results imported, {report.already} imported before"
        )
        for line in report.unmatched:
            # An unreadable row says why after its name (``cannot read its …``).
            print(f"  not matched to a configured task: {line}")
        for line in report.refused:
            print(f"  not imported: {line}")
        if report.judged_by_tocsin:
            print(
                f"  {len(report.judged_by_tocsin)} request groups left alone: Tocsin judged "
                "them already (import before starting the scheduler)"
            )
        return 0

    try:
        return asyncio.run(go())
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"tocsin import argos: cannot read {args.database_url}: {exc}", file=sys.stderr)
        return 1
