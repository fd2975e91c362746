"""Making a running nats-server apply a regenerated ``auth.conf`` without a restart.

nats-server re-reads its configuration (includes too) on SIGHUP and closes the
connections of users that are no longer authorized. Locally we find it by the
pid file the generated ``server.conf`` declares; in compose it is
``docker compose kill -s HUP nats`` (see docs/security.md).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def pid_file(directory: str | Path) -> Path:
    return Path(directory).absolute() / "nats-server.pid"


def recorded_pid(directory: str | Path) -> int | None:
    """The pid the deployment's pid file holds, or None (no file, not a number)."""
    try:
        return int(pid_file(directory).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_nats(pid: int) -> bool:
    # A stale pid file names whatever process took the number since (or init, pid 1, for a
    # file written inside a container): only a nats-server is signalled.
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("nats-server")
    except FileNotFoundError:
        return False


def reload(directory: str | Path) -> int | None:
    """Signal the local nats-server of this deployment; its pid, or None if none runs here
    (or it is not ours to signal)."""
    pid = recorded_pid(directory)
    if pid is None or pid <= 1 or not _is_nats(pid):
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except (ProcessLookupError, PermissionError):
        return None
    return pid
