"""`tocsin config check FILE`, as an operator runs it: exit 0 and a summary, or 2 and errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parent.parent / "examples" / "argos.yaml"


def _tocsin(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def test_valid_file_exits_0_with_a_summary():
    done = _tocsin("config", "check", str(EXAMPLE), EXAMPLE_HOST="status.example.org:443")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:7] == [
        f"{EXAMPLE}: valid",
        "  websites:       3",
        "  paths:          5",
        "  tasks:          17",
        "  request groups: 5",
        "  every 1m: 14 tasks",
        "  every 5m: 3 tasks",
    ]


def test_misspelled_key_exits_2_naming_its_line(tmp_path: Path):
    bad = tmp_path / "argos.yaml"
    bad.write_text(EXAMPLE.read_text().replace("        method: POST", "        methode: POST"))
    done = _tocsin("config", "check", str(bad), EXAMPLE_HOST="status.example.org:443")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{bad}:64:9: websites[0].paths[1].methode: unknown key (did you mean 'method'?)"
    ]


def test_every_error_on_its_own_line(tmp_path: Path):
    done = _tocsin("config", "check", str(EXAMPLE))  # EXAMPLE_HOST unset: three errors
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{EXAMPLE}:{line}:13: websites[{i}].domain: environment variable EXAMPLE_HOST is not set"
        for i, line in enumerate((47, 79, 82))
    ]
