"""Argos 0.10.3 itself, for differential and interoperability tests.

Argos pins FastAPI < 0.136, pydantic < 2.14, uvicorn < 0.45, apprise < 2 and
psutil < 6, all older than Tocsin's own pins, so it cannot share Tocsin's venv:
it lives in ``.venv-argos`` (``make .venv-argos/.installed``, built here on first
use from tests/argos/requirements.txt) and is driven as a subprocess.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-argos"
#: Held while the venv is checked and built: ``make test`` runs the suite in two processes
#: (pytest-xdist), and both may ask for Argos first.
LOCK = ROOT / ".venv-argos.lock"
REQUIREMENTS = Path(__file__).parent / "argos" / "requirements.txt"
ORACLE = Path(__file__).parent / "argos" / "argos_tasks.py"


def argos_bin() -> Path:
    """The bin directory of a venv holding exactly the pinned Argos; built if missing."""
    stamp = VENV / ".installed"
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_text() != REQUIREMENTS.read_text():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run(
                [str(VENV / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)], check=True
            )
            stamp.write_text(REQUIREMENTS.read_text())
    return VENV / "bin"


def argos_example() -> str:
    """The text of ``argos/config-example.yaml`` shipped in the Argos wheel."""
    out = subprocess.run(
        [
            str(argos_bin() / "python"),
            "-c",
            "import importlib.resources as r; "
            "print(r.files('argos').joinpath('config-example.yaml').read_text(), end='')",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def argos_tasks(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """What Argos's own schema and ``update_from_config`` make of each file."""
    out = subprocess.run(
        [str(argos_bin() / "python"), str(ORACLE), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, dict[str, Any]] = json.loads(out.stdout)
    return result
