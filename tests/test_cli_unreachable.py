"""Every one-shot command, as an operator types it, when NATS or PostgreSQL cannot be reached or
refuses it: one line saying which server and why, a non-zero exit, no traceback, and no
endless "nats error … Connect call failed" once a second (the services' own connection
retries forever; a command's gives up after a few attempts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.errors import Error as NatsError

from runtime.embedded import free_port
from runtime.reach import most_telling, reason
from tests.clirun import tocsin

CONFIG = """\
general: {frequency: 1m}
websites:
  - domain: https://example.org
    paths:
      - path: /
        checks: [{status-is: 200}]
"""

#: (id, the command line; CONFIG and SNAPSHOT stand for files the test writes).
NATS_COMMANDS = [
    ("silence-add", ["silence", "add", "--domain", "example.org", "--for", "1h"]),
    ("silence-add-everything", ["silence", "add", "--for", "1h"]),
    ("silence-list", ["silence", "list"]),
    ("silence-remove", ["silence", "remove", "abcd1234"]),
    ("ack", ["ack", "T", "--reason", "x"]),
    ("config-apply", ["config", "apply", "CONFIG"]),
    ("config-show", ["config", "show"]),
    ("config-history", ["config", "history"]),
    ("check-now-task", ["check-now", "T"]),
    ("check-now-domain", ["check-now", "--domain", "example.org"]),
    ("incident-open", ["incident", "open", "p", "--title", "t", "--message", "m"]),
    ("incident-update", ["incident", "update", "p", "i", "--phase", "resolved", "--message", "m"]),
    ("log-backup", ["log", "backup", "SNAPSHOT"]),
    ("log-restore", ["log", "restore", "SNAPSHOT"]),
    ("replay", ["replay", "--config", "CONFIG"]),
    (
        "import-argos",
        ["import", "argos", "--database-url", "sqlite:///nowhere.db", "--config", "CONFIG"],
    ),
]

#: (id, the command line, what it reads on stdin).
PG_COMMANDS = [
    ("user-add", ["user", "add", "me", "--password-stdin"], "a-long-password\n"),
    ("user-password", ["user", "password", "me", "--password-stdin"], "a-long-password\n"),
    ("user-disable", ["user", "disable", "me"], ""),
    ("user-enable", ["user", "enable", "me"], ""),
    ("user-delete", ["user", "delete", "me"], ""),
    ("user-list", ["user", "list"], ""),
    ("token-create", ["token", "create", "ops", "--scope", "write"], ""),
    ("token-list", ["token", "list"], ""),
    ("token-revoke", ["token", "revoke", "1"], ""),
]


def _files(args: list[str], tmp_path: Path) -> list[str]:
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "snapshot").write_text('{"config": {"name": "EVENTS"}}\n')
    named = {"CONFIG": str(tmp_path / "config.yaml"), "SNAPSHOT": str(tmp_path / "snapshot")}
    return [named.get(a, a) for a in args]


@pytest.mark.parametrize("args", [c[1] for c in NATS_COMMANDS], ids=[c[0] for c in NATS_COMMANDS])
def test_a_nats_command_says_it_cannot_reach_nats_and_exits(args: list[str], tmp_path: Path):
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    done = tocsin(_files(args, tmp_path), tmp_path, NATS_URL=url)
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join(args[:2] if args[0] in ("silence", "config", "incident", "log") else args[:1])
    assert done.stderr == f"tocsin {said}: cannot reach NATS at {url}: connection refused\n"


def test_the_nats_url_is_shown_without_its_password(tmp_path: Path):
    port = free_port()
    done = tocsin(["silence", "list"], tmp_path, NATS_URL=f"nats://ops:s3cret@127.0.0.1:{port}")
    assert done.stderr == (
        f"tocsin silence list: cannot reach NATS at nats://ops@127.0.0.1:{port}: "
        "connection refused\n"
    )


def test_the_rebuild_says_it_cannot_reach_nats(database_url: str, tmp_path: Path):
    url = f"nats://127.0.0.1:{free_port()}"
    done = tocsin(["projector", "rebuild"], tmp_path, NATS_URL=url, DATABASE_URL=database_url)
    assert (
        done.stderr == f"tocsin projector rebuild: cannot reach NATS at {url}: connection refused\n"
    )
    assert done.returncode == 1


def _failing(failure: str, pg_root: str) -> tuple[str, str, str]:
    """A PostgreSQL URL that fails so, how an error shows it (no password), and why it fails:
    the test run's server with a wrong password, or a port where nothing listens."""
    scheme, _, rest = pg_root.partition("://")
    host = rest.rpartition("@")[2]
    if failure == "refused":
        host = f"127.0.0.1:{free_port()}/tocsin"
        why = "connection refused"
    else:
        why = 'password authentication failed for user "postgres"'
    return f"{scheme}://postgres:wrong-password@{host}", f"{scheme}://postgres@{host}", why


@pytest.mark.parametrize("failure", ["wrong-password", "refused"])
@pytest.mark.parametrize(
    "args, stdin", [c[1:] for c in PG_COMMANDS], ids=[c[0] for c in PG_COMMANDS]
)
def test_a_database_command_says_why_it_cannot_connect(
    args: list[str], stdin: str, failure: str, pg_root: str, tmp_path: Path
):
    url, shown, why = _failing(failure, pg_root)
    done = tocsin(args, tmp_path, stdin, DATABASE_URL=url)
    said = " ".join(args[:2])
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"tocsin {said}: cannot reach PostgreSQL at {shown}: {why}\n",
    )


@pytest.mark.parametrize("failure", ["wrong-password", "refused"])
def test_nagios_says_unknown_in_one_line(failure: str, pg_root: str, tmp_path: Path):
    url, shown, why = _failing(failure, pg_root)
    done = tocsin(["nagios"], tmp_path, DATABASE_URL=url)
    assert (done.returncode, done.stderr) == (3, "")
    assert done.stdout == (
        f"UNKNOWN — cannot read Tocsin's database: cannot reach PostgreSQL at {shown}: {why}\n"
    )


#: What nats-py hands the error callback when the server answers a connect with ``-ERR``.
VIOLATION = NatsError("nats: 'Authorization Violation'")


@pytest.mark.parametrize(
    ("failures", "said"),
    [
        ([VIOLATION, ConnectionResetError(104, "Connection reset by peer")], "auth"),
        ([ConnectionResetError(104, "reset"), VIOLATION], "auth"),
        ([ConnectionRefusedError(), ConnectionRefusedError()], "connection refused"),
        ([TimeoutError()], "no answer in time"),
    ],
    ids=["violation-then-reset", "reset-then-violation", "refused", "timeout"],
)
def test_what_the_server_said_is_told_over_the_reset_that_follows(
    failures: list[BaseException], said: str
):
    """The server says 'Authorization Violation' and closes the connection: an attempt may
    meet the reset first (a CI run printed "[Errno 104] Connection reset by peer")."""
    expected = "'Authorization Violation'" if said == "auth" else said
    assert reason(most_telling(failures)) == expected
