"""docs/hosts.md's example is a configuration `tocsin config check` accepts, and it says
what the parser makes of it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from configuration import config

DOC = Path(__file__).resolve().parent.parent / "docs" / "hosts.md"


def _example() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/hosts.md has one YAML example"
    return blocks[0]


def test_docs_example_passes_config_check(tmp_path: Path):
    path = tmp_path / "hosts.yaml"
    path.write_text(_example())
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "hosts:          judged; 1 with their own settings" in done.stdout
    hosts = config.parse(path).hosts
    assert hosts is not None
    db1 = hosts.rules("db1")
    assert (db1.thresholds["disk"].warning, db1.thresholds["disk"].critical) == (70, 90)
    assert hosts.rules("other").thresholds["memory"].for_ == 300
