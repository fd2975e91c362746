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


def reload(directory: str | Path) -> int | None:
    """Signal the local nats-server of this deployment; its pid, or None if none runs here."""
    path = pid_file(directory)
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid
