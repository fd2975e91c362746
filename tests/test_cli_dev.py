"""The commands typed in another terminal while ``tocsin dev`` (``make run``) runs, with no
NATS_URL nor DATABASE_URL, as the README shows them (``tocsin user add me``): they reach the
system ``tocsin dev`` runs from the same data directory (its ports, its PostgreSQL password and,
with ``--secure``, the admin's NATS credentials), instead of failing on a password they were
never told, or waiting forever on a port where nothing listens."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clirun import tocsin
from tests.devproc import free_ports, start, stop, wait_serving

#: (id, the command line, its stdin, what its output holds).
COMMANDS = [
    ("user-add", ["user", "add", "me", "--password-stdin"], "a-long-password\n", "user me: add"),
    ("user-list", ["user", "list"], "", ""),
    ("token-create", ["token", "create", "ops", "--scope", "write"], "", ""),
    ("token-list", ["token", "list"], "", ""),
    ("nagios", ["nagios"], "", "|ok="),
    ("silence-list", ["silence", "list"], "", ""),
    ("silence-add-everything", ["silence", "add", "--for", "1m", "--reason", "r"], "", "silence"),
    ("config-history", ["config", "history"], "", "by "),
    ("incident-open", ["incident", "open", "demo", "--title", "t", "--message", "m"], "", ""),
]
NATS_ONLY = {"silence-list", "silence-add-everything", "config-history", "incident-open"}


def _running(root: Path, *extra: str) -> Iterator[subprocess.Popen[str]]:
    proc = start(root / ".tocsin", free_ports(), *extra)
    try:
        wait_serving(proc)
        yield proc
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``tocsin dev`` with its data in ``./.tocsin`` (its default) of the directory yielded."""
    root = tmp_path_factory.mktemp("dev")
    for _ in _running(root):
        yield root


@pytest.fixture(scope="module")
def secure_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``tocsin dev --secure``, its data directory yielded (TOCSIN_DATA_DIR for the commands)."""
    root = tmp_path_factory.mktemp("secure-dev")
    for _ in _running(root, "--secure"):
        yield root / ".tocsin"


def _check(done: subprocess.CompletedProcess[str], holds: str) -> None:
    # nagios exits 0 to 3 by the tasks' severities; what it could not read is UNKNOWN: 3.
    assert "cannot" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert done.returncode in ((0, 1, 2, 3) if holds == "|ok=" else (0,)), done.stderr
    assert holds in done.stdout


@pytest.mark.parametrize(
    "args, stdin, holds", [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS]
)
def test_a_command_reaches_the_system_tocsin_dev_runs_here(dev: Path, args, stdin, holds):
    _check(tocsin(args, dev, stdin), holds)


@pytest.mark.parametrize(
    "args, stdin, holds",
    [c[1:] for c in COMMANDS if c[0] in NATS_ONLY],
    ids=[c[0] for c in COMMANDS if c[0] in NATS_ONLY],
)
def test_a_command_reaches_the_secure_system_as_its_admin(
    secure_dev: Path, args, stdin, holds, tmp_path: Path
):
    _check(tocsin(args, tmp_path, stdin, TOCSIN_DATA_DIR=str(secure_dev)), holds)


def test_without_credentials_the_secure_system_says_so_in_one_line(
    secure_dev: Path, tmp_path: Path
):
    url = (secure_dev / "endpoints.json").read_text().split('"nats_url":"')[1].split('"')[0]
    done = tocsin(["silence", "list"], tmp_path, NATS_URL=url)
    assert (done.returncode, done.stdout) == (1, "")
    assert (
        done.stderr
        == f"tocsin silence list: cannot reach NATS at {url}: 'Authorization Violation'\n"
    )
