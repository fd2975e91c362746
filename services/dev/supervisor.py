"""``tocsin dev``: the whole system on one machine, for a first look and for development.

NATS and PostgreSQL come from pinned wheels (unless NATS_URL / DATABASE_URL
point at real servers) with their data under ``--data-dir``; each service runs
as its own process, restarted if it dies; Ctrl-C stops the services first,
then the servers, and leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

from configuration import printed
from runtime import local
from runtime.embedded import NatsServer, PostgresServer, port_in_use
from security import devmode
from services.dev import configure


def _demo_incident(data: Path, env: dict[str, str], logs: Path) -> None:
    """The demo's status page shows an operator's incident: posted once per data directory,
    with the same command an operator would type."""
    marker = data / "demo-incident"
    if marker.exists():
        return
    with open(logs / "incident.log", "ab") as out:
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "incident",
                    "open",
                    "demo",
                    "--title",
                    "/broken answers 500",
                    "--message",
                    "The demo breaks this page on purpose, to show how an incident looks.",
                    "--phase",
                    "identified",
                    "--component",
                    "Everything",
                ],
                env=env,
                stdout=out,
                stderr=out,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return  # NATS not reachable with these credentials: no incident, the demo runs on
    if done.returncode == 0:
        marker.touch()


class Child:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.args, self.env, self.log_dir = name, args, env, log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.restart_at = 0.0
        self.started = 0.0

    def start(self) -> None:
        log = open(self.log_dir / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_http(url: str, timeout: float, children: list[Child]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def run_dev(args: Any) -> int:
    env = dict(os.environ)
    env.setdefault("TOCSIN_DEMO_URL", f"http://127.0.0.1:{args.demo_port}")
    env.setdefault("TOCSIN_DEMO_HOST", f"127.0.0.1:{args.demo_port}")
    # The demo target always runs, so a copy of the demo configuration (say, with a mail
    # section added) works with --config as it does by default.
    config = args.config or str(resources.files("services.dev").joinpath("demo.yaml"))
    # Read before anything starts, as the services will read it: a file that does not read
    # is refused with its problems, as `tocsin config apply` refuses it.
    own = printed.load(config, env)
    if own is None:
        return 2
    data = Path(args.data_dir).absolute()
    data.mkdir(parents=True, exist_ok=True)
    (data / "logs").mkdir(exist_ok=True)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for port, what in ((args.port, "web"), (args.demo_port, "demo target")):
        if port_in_use(port):
            print(
                f"tocsin dev: port {port} for the {what} is already in use "
                f"(is another `make run` running?)",
                file=sys.stderr,
            )
            return 1

    nats = pg = None
    secure = None
    try:
        if "NATS_URL" not in os.environ:
            # --secure: authorization on, from identities generated under the data directory.
            secure = devmode.prepare(data) if getattr(args, "secure", False) else None
            nats = NatsServer(
                data / "nats", port=args.nats_port, config=secure.config if secure else None
            ).start()
            env["NATS_URL"] = nats.url
        if "DATABASE_URL" not in os.environ:
            pg = PostgresServer(data / "postgres", port=args.postgres_port).start()
            env["DATABASE_URL"] = pg.url
    except RuntimeError as exc:
        print(f"tocsin dev: {exc}", file=sys.stderr)
        if nats:
            nats.stop()
        return 1
    # For the commands typed in another terminal (`tocsin user add me`): the servers' ports,
    # PostgreSQL's password, and with --secure the identity of a human operator.
    local.write(
        data,
        local.Endpoints(
            nats_url=nats.url if nats else None,
            database_url=pg.url if pg else None,
            nats_creds=str(secure.store.creds_path("admin")) if secure else None,
        ),
    )

    env["TOCSIN_CONFIG"] = config
    env.setdefault("TOCSIN_LOG_LEVEL", "info")
    logs = data / "logs"
    children = [
        Child("demo-target", ["demo-target", "--port", str(args.demo_port)], env, logs),
        Child("scheduler", ["scheduler"], env, logs),
        Child("projector", ["projector"], env, logs),
        # Host figures every 10 s: the hosts page comes alive soon after start.
        Child("agent", ["agent", "--name", "local", "--host-interval", "10s"], env, logs),
        Child("web", ["web", "--host", args.host, "--port", str(args.port)], env, logs),
        Child("notifier", ["notifier", "--web-url", f"http://{args.host}:{args.port}"], env, logs),
    ]
    if secure:
        secure.apply(children, env)
    # As the scheduler (under --secure: the identity that may apply), before it starts.
    scheduler_env = next(c.env for c in children if c.name == "scheduler")
    try:
        if args.config is not None:
            if not configure.apply(config, scheduler_env):
                return 2
            demo = False
        else:
            demo = configure.demo_runs(scheduler_env, own)
        for child in children:
            child.start()
        url = f"http://{args.host}:{args.port}"
        if _wait_http(f"{url}/healthz", 60, children):
            if demo:
                # With --secure, as the web service: the role that may publish status incidents.
                web_env = next(c.env for c in children if c.name == "web")
                _demo_incident(data, web_env, logs)
            print(f"Tocsin is running: {url}   (logs in {logs}; Ctrl-C to stop)", flush=True)
        else:
            print(
                f"tocsin dev: the web service did not answer; see {logs}/web.log", file=sys.stderr
            )
        while not stopping:
            time.sleep(0.5)
            for child in children:
                if child.alive() or stopping:
                    continue
                now = time.monotonic()
                if child.restart_at == 0.0:
                    # Supervise: a crashed service comes back, after a growing pause.
                    child.restarts += 1
                    delay = min(2**child.restarts, 30)
                    child.restart_at = now + delay
                    code = child.proc.returncode if child.proc else "?"
                    print(
                        f"tocsin dev: {child.name} exited ({code}); restarting in {delay}s "
                        f"(see {logs}/{child.name}.log)",
                        file=sys.stderr,
                    )
                elif now >= child.restart_at:
                    child.restart_at = 0.0
                    child.start()
    finally:
        print("Stopping Tocsin…", file=sys.stderr)
        for child in children:
            child.stop()
        for child in children:
            child.wait(20)
        if pg:
            pg.stop()
        if nats:
            nats.stop()
        print("Stopped.", file=sys.stderr)
    return 0
