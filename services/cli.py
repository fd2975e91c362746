"""``tocsin``: one command, one subcommand per service or operation.

Each service registers its own subcommands from its own ``cli.py``; every option also reads an
environment variable (shown in ``--help``), so the same image runs anywhere with only its
environment changed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from runtime import __version__, cliopts, logs
from runtime.reach import Unreachable

#: The module that registers each subcommand (``register(subparsers)`` returns
#: ``{command: handler}``), in the order ``--help`` lists them. Only the chosen command's
#: module is imported: a service's process holds its own imports, not every service's (the
#: scheduler's would otherwise carry the web's, the notifier's and the agent's, 40 MB).
COMMANDS = {
    "dev": "services.dev.cli",
    "demo-target": "services.dev.cli",
    "scheduler": "services.scheduler.cli",
    "config": "services.scheduler.cli",
    "check-now": "services.scheduler.cli",
    "heartbeat": "services.scheduler.cli",
    "shards": "services.scheduler.cli",
    "agent": "services.agent.cli",
    "check": "services.agent.cli",
    "argos": "services.argos.cli",
    "import": "services.argos.cli",
    "projector": "services.projector.cli",
    "log": "services.projector.cli",
    "web": "services.web.cli",
    "user": "services.web.cli",
    "token": "services.web.cli",
    "nagios": "services.web.cli",
    "incident": "services.web.incidentcli",
    "notifier": "services.notifier.cli",
    "silence": "services.notifier.cli",
    "notify": "services.notifier.cli",
    "ack": "services.notifier.cli",
    "replay": "services.notifier.cli",
    "agents": "security.cli",
    "security": "security.cli",
}
MODULES = tuple(dict.fromkeys(COMMANDS.values()))
#: Commands whose process runs no check: nats-py's websocket transport is all they would
#: import aiohttp for, with yarl, multidict and attrs (11 MB of the scheduler's RSS at 100,000
#: tasks, a target of issue 19), so it is left out unless a NATS URL is a websocket one.
WITHOUT_AIOHTTP = frozenset({"scheduler"})


def build_parser(
    modules: Iterable[str] = MODULES,
) -> tuple[argparse.ArgumentParser, dict[str, Callable[[Any], int]]]:
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
    for name in modules:
        commands.update(importlib.import_module(name).register(sub))
    return parser, commands


def chosen(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``, read as ``tocsin`` reads it; ``None`` when there is
    none or the line is wrong (the full parser then lists every command or says what is)."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=True, exit_on_error=False)
    pre.add_argument("--log-level")
    pre.add_argument("command", nargs="?")
    try:
        known, _ = pre.parse_known_args(argv)
    except argparse.ArgumentError:
        return None
    return known.command if known.command in COMMANDS else None


def websocket_nats(argv: list[str]) -> bool:
    """Whether the command line or ``NATS_URL`` may name a websocket NATS server (read
    broadly: any ws:// or wss:// in them), for which nats-py needs aiohttp."""
    said = " ".join([*argv, os.environ.get("NATS_URL", "")]).lower()
    return "ws://" in said or "wss://" in said


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = chosen(argv)
    if command in WITHOUT_AIOHTTP and not websocket_nats(argv):
        # Import machinery's own refusal (a None entry): nats-py's optional import of aiohttp
        # fails and it keeps only its TCP transport. Before any import of nats.
        sys.modules.setdefault("aiohttp", None)  # type: ignore[arg-type]
    parser, commands = build_parser([COMMANDS[command]] if command else MODULES)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    try:
        cliopts.fill(args)
        return commands[args.command](args)
    except Unreachable as exc:
        said = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
        print(f"tocsin {said}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
