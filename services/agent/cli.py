"""``tocsin agent`` and ``tocsin check`` (every task once, from here)."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable
from typing import Any

from runtime import cliopts
from security.client import add_options as add_security_options
from security.client import from_args
from services.agent import oneshot, workers
from services.agent.host import FsFilter, HostOptions
from services.agent.service import AgentOptions, main


def register(sub: Any) -> dict[str, Callable[[Any], int]]:
    p = sub.add_parser(
        "agent",
        help="pull check requests of a location and run them",
        description="Pull check requests of one location, run them concurrently "
        "and publish the completions. SIGTERM: finish what is held, then exit.",
    )
    cliopts.nats(p)
    p.add_argument(
        "--name",
        default=cliopts.env("TOCSIN_AGENT_NAME", socket.gethostname().split(".")[0]),
        help="agent name, a subject token (env TOCSIN_AGENT_NAME; default host name)",
    )
    p.add_argument(
        "--location",
        default=cliopts.env("TOCSIN_LOCATION", "default"),
        help="location whose requests to take (env TOCSIN_LOCATION)",
    )
    p.add_argument("--concurrency", type=int, default=500, help="checks at once, per process")
    p.add_argument(
        "--processes",
        type=int,
        # A string default goes through ``type`` too: a typo in the variable is argparse's
        # "invalid int value", not a traceback.
        default=cliopts.env("TOCSIN_AGENT_PROCESSES") or "1",
        help="worker processes sharing the location's work queue, to use more than one core "
        "(env TOCSIN_AGENT_PROCESSES; default 1; docs/scaling.md)",
    )
    h = p.add_argument_group("host observation (CPU, memory, disks, load of this machine)")
    h.add_argument(
        "--host-only",
        action="store_true",
        help="only observe this host: no work queue, no checks",
    )
    h.add_argument(
        "--host-interval",
        type=_seconds,
        default=cliopts.env("TOCSIN_HOST_INTERVAL", "30s"),
        help="seconds (or 30s, 1m) between observations; 0 turns them off "
        "(env TOCSIN_HOST_INTERVAL, default 30s)",
    )
    h.add_argument(
        "--host-include-mount",
        action="append",
        default=[],
        metavar="GLOB",
        help="also observe these mount points, whatever their type (e.g. a tmpfs); repeatable",
    )
    h.add_argument(
        "--host-exclude-mount",
        action="append",
        default=[],
        metavar="GLOB",
        help="do not observe these mount points; repeatable",
    )
    h.add_argument(
        "--host-exclude-type",
        action="append",
        default=[],
        metavar="FSTYPE",
        help="do not observe filesystems of this type; repeatable",
    )
    add_security_options(p)
    oneshot.add_parser(sub)
    return {"agent": run_agent, "check": oneshot.main}


def _seconds(value: str) -> float:
    """``30``, ``30s``, ``2m``, ``1h`` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (value[:-1], units[value[-1]]) if value[-1:] in units else (value, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds such as 30 or 30s, got {value!r}"
        ) from None
    if not 0 <= seconds <= 86400:
        raise argparse.ArgumentTypeError("expected 0 to 86400 seconds (0: off)")
    return seconds


def host_options(args: argparse.Namespace) -> HostOptions | None:
    interval = args.host_interval
    if interval == 0:
        if args.host_only:
            raise SystemExit("tocsin agent: --host-only needs a --host-interval above 0")
        return None
    return HostOptions(
        interval,
        FsFilter(
            tuple(args.host_include_mount),
            tuple(args.host_exclude_mount),
            tuple(args.host_exclude_type),
        ),
    )


def run_agent(args: argparse.Namespace) -> int:
    opts = AgentOptions(
        args.nats_url,
        args.name,
        args.location,
        args.concurrency,
        security=from_args(args),
        js_domain=args.js_domain,
        host=host_options(args),
        host_only=args.host_only,
    )
    if args.processes < 1 or (args.processes > 1 and args.host_only):
        raise SystemExit("tocsin agent: --processes is 1 or more, and 1 with --host-only")
    if args.processes > 1:
        return workers.run(opts, args.processes)
    return cliopts.run(main(opts))
