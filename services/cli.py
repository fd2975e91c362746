"""``tocsin``: one command, one subcommand per service or operation.

Every option also reads an environment variable (shown in ``--help``), so the
same image runs anywhere with only its environment changed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from services import __version__
from services.common import logs

DEFAULT_NATS = "nats://127.0.0.1:14222"
DEFAULT_DB = "postgresql://postgres@127.0.0.1:15432/tocsin"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _add_nats(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nats-url",
        default=_env("NATS_URL", DEFAULT_NATS),
        help="NATS server(s), comma-separated (env NATS_URL; default %(default)s)",
    )


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default=_env("DATABASE_URL", DEFAULT_DB),
        help="PostgreSQL URL (env DATABASE_URL; default %(default)s)",
    )


def _add_config(p: argparse.ArgumentParser, required: bool = True) -> None:
    default = _env("TOCSIN_CONFIG")
    p.add_argument(
        "--config",
        default=default,
        required=required and default is None,
        help="configuration file, Argos format (env TOCSIN_CONFIG)",
    )


class _Common:
    """The option adders a plug-in module's subcommands share with the built-in ones."""

    nats = staticmethod(_add_nats)
    db = staticmethod(_add_db)
    config = staticmethod(_add_config)
    env = staticmethod(_env)
    run = staticmethod(lambda coro: _run(coro))


common = _Common()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tocsin", description="Distributed uptime monitoring on a NATS JetStream event log."
    )
    parser.add_argument("--version", action="version", version=f"tocsin {__version__}")
    parser.add_argument(
        "--log-level",
        default=_env("TOCSIN_LOG_LEVEL", "warning"),
        help="debug, info, warning (default) or error (env TOCSIN_LOG_LEVEL)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "dev",
        help="run everything on this machine (embedded NATS and PostgreSQL)",
        description="Start NATS and PostgreSQL (embedded unless NATS_URL / "
        "DATABASE_URL are set), the demo target, the scheduler, one agent, the "
        "projector and the web service. Ctrl-C stops them all.",
    )
    p.add_argument(
        "--data-dir",
        default=_env("TOCSIN_DATA_DIR", ".tocsin"),
        help="where the embedded servers keep their data (env TOCSIN_DATA_DIR; "
        "default %(default)s)",
    )
    _add_config(p, required=False)
    p.add_argument("--host", default="127.0.0.1", help="web address (default %(default)s)")
    p.add_argument(
        "--port",
        type=int,
        default=int(_env("TOCSIN_PORT", "8000") or 8000),
        help="web port (env TOCSIN_PORT; default %(default)s)",
    )
    p.add_argument("--nats-port", type=int, default=14222, help="embedded NATS port")
    p.add_argument("--postgres-port", type=int, default=15432, help="embedded PostgreSQL port")
    p.add_argument("--demo-port", type=int, default=8787, help="demo target port")
    p.add_argument(
        "--secure",
        action="store_true",
        default=bool(_env("TOCSIN_DEV_SECURE")),
        help="embedded NATS with authorization: identities, credentials and "
        "auth.conf under DATA_DIR/security (env TOCSIN_DEV_SECURE)",
    )

    p = sub.add_parser(
        "scheduler",
        help="turn the configuration into check requests; judge",
        description="Apply the configuration (on start and on SIGHUP), publish "
        "check requests when due, judge completions into severities.",
    )
    _add_nats(p)
    _add_config(p)
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
        "--replicas",
        type=int,
        default=int(_env("TOCSIN_REPLICAS", "1") or 1),
        help="JetStream replicas of the streams (env TOCSIN_REPLICAS)",
    )

    p = sub.add_parser(
        "agent",
        help="pull check requests of a location and run them",
        description="Pull check requests of one location, run them concurrently "
        "and publish the completions. SIGTERM: finish what is held, then exit.",
    )
    _add_nats(p)
    p.add_argument(
        "--name",
        default=_env("TOCSIN_AGENT_NAME", socket.gethostname().split(".")[0]),
        help="agent name, a subject token (env TOCSIN_AGENT_NAME; default host name)",
    )
    p.add_argument(
        "--location",
        default=_env("TOCSIN_LOCATION", "default"),
        help="location whose requests to take (env TOCSIN_LOCATION)",
    )
    p.add_argument("--concurrency", type=int, default=500, help="checks at once")
    from services.security.client import add_options as add_security_options

    add_security_options(p)

    p = sub.add_parser(
        "projector",
        help="fold the event log into PostgreSQL",
        description="Fold EVENTS into the read models. `tocsin projector rebuild` "
        "replays the whole log into fresh tables and swaps them in.",
    )
    _add_nats(p)
    _add_db(p)
    p.add_argument("action", nargs="?", choices=["run", "rebuild"], default="run")

    p = sub.add_parser(
        "web",
        help="serve the dashboard and the JSON API",
        description="Serve the dashboard, the JSON API and live updates.",
    )
    _add_db(p)
    p.add_argument(
        "--host", default=_env("TOCSIN_HOST", "127.0.0.1"), help="listen address (env TOCSIN_HOST)"
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(_env("TOCSIN_PORT", "8000") or 8000),
        help="listen port (env TOCSIN_PORT)",
    )

    p = sub.add_parser("demo-target", help="serve the demo website on loopback")
    p.add_argument("--port", type=int, default=8787)

    p = sub.add_parser("config", help="check, apply or list configurations")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = csub.add_parser("check", help="validate a file: exit 0 and a summary, or 2 and errors")
    c.add_argument("file")
    c = csub.add_parser("apply", help="publish a configuration's diff to the log")
    c.add_argument("file")
    _add_nats(c)
    c = csub.add_parser("history", help="list past applications from the log")
    _add_nats(c)
    for module in PLUGINS:
        COMMANDS.update(importlib.import_module(module).register(sub, common))
    return parser


#: Modules adding their own subcommands: each has ``register(subparsers, common)`` returning
#: ``{command: handler}``; ``common`` offers the shared option adders (nats, db, config).
PLUGINS: list[str] = [
    "services.security.cli",
    "services.notifier.cli",
    "services.web.cli",
    "services.oneshot",
]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level)
    handler: Callable[[Any], int] = COMMANDS[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


def _run(coro: Any) -> int:
    asyncio.run(coro)
    return 0


def cmd_dev(args: Any) -> int:
    from services.dev import run_dev

    return run_dev(args)


def cmd_scheduler(args: Any) -> int:
    from events.streams import Tuning
    from services.scheduler.config import ConfigError
    from services.scheduler.service import SchedulerOptions, main

    tuning = Tuning(replicas=args.replicas, ack_wait=args.ack_wait, max_deliver=args.max_deliver)
    try:
        return _run(main(SchedulerOptions(args.nats_url, args.config, tuning)))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


def cmd_agent(args: Any) -> int:
    from services.agent.service import AgentOptions, main
    from services.security.client import from_args

    return _run(
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


def cmd_projector(args: Any) -> int:
    if args.action == "rebuild":
        from services.projector.rebuild import rebuild

        seq = asyncio.run(rebuild(args.nats_url, args.database_url))
        print(f"rebuilt read models up to event {seq}")
        return 0
    from services.projector.service import ProjectorOptions, main

    return _run(main(ProjectorOptions(args.nats_url, args.database_url)))


def cmd_web(args: Any) -> int:
    import uvicorn

    from services.web.app import create_app

    # Open pages hold a live (SSE) stream: without a grace limit, they would hold a stop forever.
    uvicorn.run(
        create_app(args.database_url),
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    return 0


def cmd_demo_target(args: Any) -> int:
    from services.demo.target import serve_forever

    return _run(serve_forever("127.0.0.1", args.port))


def cmd_config(args: Any) -> int:
    from services.configcli import apply, check, history

    return {"check": check, "apply": apply, "history": history}[args.action](args)


COMMANDS: dict[str, Callable[[Any], int]] = {
    "dev": cmd_dev,
    "scheduler": cmd_scheduler,
    "agent": cmd_agent,
    "projector": cmd_projector,
    "web": cmd_web,
    "demo-target": cmd_demo_target,
    "config": cmd_config,
}

if __name__ == "__main__":
    sys.exit(main())
