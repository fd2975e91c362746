"""``tocsin``: one command, one subcommand per service or operation.

Each service registers its own subcommands from its own ``cli.py``; every option also reads an
environment variable (shown in ``--help``), so the same image runs anywhere with only its
environment changed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from runtime import __version__, cliopts, logs
from security import cli as security_cli
from services.agent import cli as agent_cli
from services.argos import cli as argos_cli
from services.dev import cli as dev_cli
from services.notifier import cli as notifier_cli
from services.projector import cli as projector_cli
from services.scheduler import cli as scheduler_cli
from services.web import cli as web_cli
from services.web import incidentcli

#: Every module that adds subcommands: ``register(subparsers)`` returns ``{command: handler}``.
COMMAND_MODULES = (
    dev_cli,
    scheduler_cli,
    agent_cli,
    argos_cli,
    projector_cli,
    web_cli,
    incidentcli,
    notifier_cli,
    security_cli,
)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[Any], int]]]:
    parser = argparse.ArgumentParser(
        prog="tocsin", description="Distributed uptime monitoring on a NATS JetStream event log."
    )
    parser.add_argument("--version", action="version", version=f"tocsin {__version__}")
    parser.add_argument(
        "--log-level",
        default=cliopts.env("TOCSIN_LOG_LEVEL", "warning"),
        help="debug, info, warning (default) or error (env TOCSIN_LOG_LEVEL)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, Callable[[Any], int]] = {}
    for module in COMMAND_MODULES:
        commands.update(module.register(sub))
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
