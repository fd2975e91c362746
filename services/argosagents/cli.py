"""``tocsin argos-agents``: serve Argos 0.10.3 agents a location's checks."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from runtime import cliopts
from security.client import add_options as add_security_options
from security.client import from_args
from services.argosagents.service import GatewayOptions, main


def register(sub: Any) -> dict[str, Callable[[Any], int]]:
    p = sub.add_parser(
        "argos-agents",
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
        default=100.0,
        help="seconds an agent may hold a request before it is given back "
        "(Argos's max_lock_seconds; default %(default)s)",
    )
    add_security_options(p)
    return {"argos-agents": run}


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
