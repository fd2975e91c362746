"""Argos 0.10.3 itself, for differential and interoperability tests.

Argos pins FastAPI < 0.136, pydantic < 2.14, uvicorn < 0.45, apprise < 2 and
psutil < 6, all older than Tocsin's own pins, so it cannot share Tocsin's venv:
it lives in ``.venv-argos`` (``make .venv-argos/.installed``, built here on first
use from tests/argos/requirements.txt) and is driven as a subprocess.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
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


#: Files one oracle process reads at least: each process first spends about a second
#: importing Argos (the time of some 50 files).
FILES_PER_PROCESS = 100


class ArgosTasks:
    """What Argos's own schema and ``update_from_config`` make of each file, read in the
    background from the start: ``result()`` waits for it. Argos's pure-Python YAML and
    SQLAlchemy take some 16 ms a file, so hundreds of files are shared among processes,
    one per CPU, and the caller reads them with Tocsin meanwhile."""

    def __init__(self, paths: list[Path]) -> None:
        python = str(argos_bin() / "python")
        n = max(1, min(os.cpu_count() or 1, len(paths) // FILES_PER_PROCESS))
        # Files, not pipes: a process whose output fills a pipe would wait for the one
        # before it to be read.
        self._runs = []
        for share in (paths[i::n] for i in range(n)):
            out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
            run = subprocess.Popen([python, str(ORACLE), *map(str, share)], stdout=out, stderr=err)
            self._runs.append((run, out, err))

    def result(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for run, out, err in self._runs:
            with out, err:
                run.wait()
                out.seek(0)
                err.seek(0)
                if run.returncode:
                    raise subprocess.CalledProcessError(
                        run.returncode, run.args, out.read(), err.read()
                    )
                found.update(json.load(out))
        return found


def argos_tasks(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """What Argos's own schema and ``update_from_config`` make of each file."""
    return ArgosTasks(paths).result()
