"""``tocsin``: each subcommand loads only the module that registers it."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import uvloop

from runtime import cliopts
from services import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", cli.MODULES)
def test_the_table_names_what_each_module_registers(module: str) -> None:
    sub = argparse.ArgumentParser().add_subparsers()
    registered = set(importlib.import_module(module).register(sub))
    assert registered == {c for c, m in cli.COMMANDS.items() if m == module}


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["scheduler", "--config", "x.yaml"], "scheduler"),
        (["--log-level", "debug", "config", "check", "x.yaml"], "config"),
        (["--log-lev=info", "agent", "--name", "a"], "agent"),
        (["--help"], None),
        (["--log-level"], None),
        (["no-such-command"], None),
        ([], None),
    ],
)
def test_the_chosen_command(argv: list[str], expected: str | None) -> None:
    assert cli.chosen(argv) == expected


def test_the_scheduler_loads_no_other_service() -> None:
    """What a ``tocsin scheduler`` process holds once its options are read: its own modules,
    none of the web's, the agent's or the notifier's (nor their libraries)."""
    code = (
        "import sys\n"
        "from services import cli\n"
        "try:\n"
        "    cli.main(['scheduler', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "services.scheduler.shards" in out
    others = sorted(
        m
        for m in out
        if (
            m.startswith("services.")
            and not m.startswith("services.scheduler")
            and m != "services.cli"
        )
        or m == "security.cli"
        or m.split(".")[0] in ("fastapi", "jinja2", "uvicorn", "asyncpg", "apprise", "dns")
    )
    assert others == []


def _modules_of_scheduler(*options: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules a ``tocsin scheduler`` process has imported once its options are read."""
    code = (
        "import sys\n"
        "from services import cli\n"
        "try:\n"
        f"    cli.main(['scheduler', *{list(options)!r}, '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        # A None entry is an import refused, not a module held.
        "print('\\n'.join(m for m, v in sys.modules.items() if v is not None))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env
    ).stdout.split()


def test_the_scheduler_leaves_aiohttp_out() -> None:
    """nats-py imports aiohttp (and yarl, multidict, attrs) for its websocket transport only:
    11 MB of the scheduler's RSS at 100,000 tasks. Left out, NATS over TCP still connects
    (every test of the scheduler process)."""
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    out = _modules_of_scheduler("--nats-url", "nats://127.0.0.1:4222", env=env)
    assert "nats.aio.client" in out
    assert [m for m in out if m.split(".")[0] in ("aiohttp", "yarl", "multidict")] == []


@pytest.mark.parametrize(
    "options, env",
    [
        (["--nats-url", "nats://a:4222,WSS://b:443"], {}),
        ([], {"NATS_URL": "ws://127.0.0.1:8080"}),
    ],
)
def test_a_websocket_nats_url_keeps_aiohttp(options: list[str], env: dict[str, str]) -> None:
    assert "aiohttp" in _modules_of_scheduler(*options, env={**os.environ, **env})


def test_a_typo_in_the_agents_processes_variable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOCSIN_AGENT_PROCESSES", "two")
    with pytest.raises(SystemExit) as exited:
        cli.main(["agent"])
    assert exited.value.code == 2
    assert "--processes: invalid int value: 'two'" in capsys.readouterr().err


def test_services_run_on_uvloop() -> None:
    """Every long-running service (scheduler, agent and its workers, projector, notifier)
    starts through ``cliopts.run``: its loop is uvloop's, whose sockets and callbacks cost
    less CPU per check than asyncio's (bench/drain.py)."""
    loops: list[asyncio.AbstractEventLoop] = []

    async def service() -> None:
        loops.append(asyncio.get_running_loop())

    assert cliopts.run(service()) == 0
    assert isinstance(loops[0], uvloop.Loop)
