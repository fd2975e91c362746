"""``tocsin agent`` and ``tocsin check`` (every task once, from here)."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable
from typing import Any

from runtime import cliopts
from security.client import add_options as add_security_options
from security.client import from_args
from services.agent import oneshot
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
    p.add_argument("--concurrency", type=int, default=500, help="checks at once")
    add_security_options(p)
    oneshot.add_parser(sub)
    return {"agent": run_agent, "check": oneshot.main}


def run_agent(args: argparse.Namespace) -> int:
    return cliopts.run(
        main(
            AgentOptions(
                args.nats_url,
                args.name,
                args.location,
                args.concurrency,
                security=from_args(args),
                js_domain=args.js_domain,
            )
        )
    )
