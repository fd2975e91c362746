"""A configuration file read for a command line: its problems printed, one per line."""

from __future__ import annotations

import sys

from configuration import config as configuration


def load(path: str, env: dict[str, str] | None = None) -> configuration.Config | None:
    """``path`` read with ``env`` (this process's environment by default); None once each of
    its problems is printed, one ``FILE:LINE:COL: key.path: message`` line each."""
    try:
        return configuration.parse(path, env)
    except configuration.ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
