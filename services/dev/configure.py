"""What ``tocsin dev`` runs: the file given with ``--config``, applied at start exactly as
``tocsin config apply FILE`` applies it; without ``--config``, the configuration in force.

The scheduler runs the log's configuration, its own file only filling an empty log, so a
data directory the demo ran in once would otherwise go on running the demo whatever file
is given. Without ``--config`` nothing is applied: the demo fills an empty log, and a
configuration applied earlier stays (a restart never reverts an apply); ``tocsin dev`` says
which one runs when it is not the demo.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from nats.errors import Error as NatsError

from configuration import config as configuration
from configuration.inforce import last_apply
from events.types import ConfigApplied
from runtime import bus
from security.client import ClientSecurity

SAY = "tocsin dev: "
#: Seconds an apply or a look at the log may take: NATS is up, or was given, by then.
NATS_WAIT = 60.0


def apply(path: str, env: dict[str, str]) -> bool:
    """``tocsin config apply PATH`` with ``env`` (the scheduler's, its identity under
    ``--secure``), what it prints said as ours; False when it did not apply."""
    command = [sys.executable, "-m", "services.cli", "--log-level", "warning"]
    try:
        done = subprocess.run(
            [*command, "config", "apply", path],
            env=env,
            capture_output=True,
            text=True,
            timeout=NATS_WAIT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print(f"{SAY}{path}: not applied: NATS did not answer in {NATS_WAIT:g}s", file=sys.stderr)
        return False
    for line in done.stdout.splitlines():
        print(SAY + line, flush=True)
    for line in done.stderr.splitlines():
        print(SAY + line, file=sys.stderr, flush=True)
    return done.returncode == 0


def demo_runs(env: dict[str, str], demo: configuration.Config) -> bool:
    """Whether the demo is what runs (or will: the scheduler fills an empty log with it); when
    another configuration is in force, says which and why it stays."""
    try:
        last = asyncio.run(asyncio.wait_for(_last(env), NATS_WAIT))
    except (OSError, TimeoutError, NatsError) as exc:
        print(f"{SAY}could not read the configuration in force: {exc}", file=sys.stderr)
        return True
    if last is None or last.revision == demo.digest:
        return True
    print(
        f"{SAY}running the configuration in force, not the demo: revision {last.revision[:12]} "
        f"from {last.source}, applied by {last.applied_by}. The demo only fills an empty log; "
        "`tocsin dev --config FILE` applies FILE (and gives the services its secret values).",
        flush=True,
    )
    return False


async def _last(env: dict[str, str]) -> ConfigApplied | None:
    options = ClientSecurity.from_env(env).connect_options()
    nc = await bus.connect(env["NATS_URL"], "dev", **options)
    try:
        return await last_apply(nc.jetstream())
    finally:
        await bus.close(nc)
