"""The web refuses to start on a configuration file it cannot read, as the other services do:
serving on would silently drop the file's root_path, LDAP and cookie secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from configuration.yamlsource import ConfigError
from services.web.settings import load_settings

BROKEN = "general:\n  frequency: 1m\n  root_path: /tocsin/\nwebsites: [\n"


def test_an_unreadable_file_is_refused_with_where(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with pytest.raises(ConfigError, match=rf"{path}:5:1: .*invalid YAML"):
        load_settings(str(path), env={})
    with pytest.raises(ConfigError, match=r"missing\.yaml:1:1: .*cannot read"):
        load_settings(None, env={"TOCSIN_CONFIG": str(tmp_path / "missing.yaml")})


def test_a_refused_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "refused.yaml"
    path.write_text("general:\n  frequency: 1m\nwebsites:\n  - domain: x\n    paths: 3\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+:\d+"):
        load_settings(str(path), env={})


def test_no_file_named_is_the_environment_alone() -> None:
    assert load_settings(None, env={"TOCSIN_ROOT_PATH": "/t/"}).root_path == "/t"


def test_tocsin_web_exits_2_naming_the_place(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    env = {"TOCSIN_CONFIG": str(path), "PATH": "/usr/bin:/bin"}
    # The timeout only ends a web that did start (it serves on; port 1 keeps it off the net).
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "web", "--port", "1"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        env={**env, "DATABASE_URL": "postgresql://127.0.0.1:1/x"},
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"{path}:5:1:" in done.stderr
