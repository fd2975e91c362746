"""``tocsin`` run as an operator types it, for the tests of its commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def tocsin(
    args: list[str], cwd: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """The command as typed in a shell, in ``cwd``: none of the test run's own servers in its
    environment unless given. The timeout only ends a command that would never return."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NATS_URL", "DATABASE_URL", "TOCSIN_NATS_CREDS", "TOCSIN_DATA_DIR")
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **env},
        timeout=120,
    )
