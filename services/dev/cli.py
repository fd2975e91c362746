"""``tocsin dev`` (everything on one machine) and ``tocsin demo-target``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from runtime import cliopts, local
from services.dev.supervisor import run_dev
from services.dev.target import serve_forever


def register(sub: Any) -> dict[str, Callable[[Any], int]]:
    p = sub.add_parser(
        "dev",
        help="run everything on this machine (embedded NATS and PostgreSQL)",
        description="Start NATS and PostgreSQL (embedded unless NATS_URL / "
        "DATABASE_URL are set), the demo target, the scheduler, one agent, the "
        "projector and the web service. Ctrl-C stops them all.",
    )
    p.add_argument(
        "--data-dir",
        default=str(local.data_dir()),
        help="where the embedded servers keep their data (env TOCSIN_DATA_DIR; "
        "default %(default)s)",
    )
    cliopts.config(p, required=False)
    p.add_argument("--host", default="127.0.0.1", help="web address (default %(default)s)")
    p.add_argument(
        "--port",
        type=int,
        default=int(cliopts.env("TOCSIN_PORT", "8000") or 8000),
        help="web port (env TOCSIN_PORT; default %(default)s)",
    )
    p.add_argument("--nats-port", type=int, default=14222, help="embedded NATS port")
    p.add_argument("--postgres-port", type=int, default=15432, help="embedded PostgreSQL port")
    p.add_argument("--demo-port", type=int, default=8787, help="demo target port")
    p.add_argument(
        "--secure",
        action="store_true",
        default=bool(cliopts.env("TOCSIN_DEV_SECURE")),
        help="embedded NATS with authorization: identities, credentials and "
        "auth.conf under DATA_DIR/security (env TOCSIN_DEV_SECURE)",
    )
    p = sub.add_parser("demo-target", help="serve the demo website on loopback")
    p.add_argument("--port", type=int, default=8787)
    return {"dev": run_dev, "demo-target": run_demo_target}


def run_demo_target(args: argparse.Namespace) -> int:
    return cliopts.run(serve_forever("127.0.0.1", args.port))
