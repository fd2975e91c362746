"""``tocsin dev`` as a child process, for the tests of what `make run` starts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from runtime.embedded import PostgresServer


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def free_ports() -> dict[str, int]:
    """Four distinct free ports: each is held while the next is picked, else the kernel may
    hand out the same one twice (two services of `tocsin dev` on one port)."""
    names = ("web", "nats", "pg", "demo")
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in names]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return {name: int(sock.getsockname()[1]) for name, sock in zip(names, socks, strict=True)}


def start(data: Path, ports: dict[str, int], *extra: str) -> subprocess.Popen[str]:
    """``tocsin dev`` on the given ports, with embedded servers whatever the environment says."""
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "dev",
            *extra,
            "--data-dir",
            str(data),
            "--port",
            str(ports["web"]),
            "--nats-port",
            str(ports["nats"]),
            "--postgres-port",
            str(ports["pg"]),
            "--demo-port",
            str(ports["demo"]),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_serving(proc: subprocess.Popen[str]) -> str:
    """What ``tocsin dev`` printed, up to the line that says it is running."""
    assert proc.stdout is not None
    seen = []
    while True:
        line = proc.stdout.readline()
        assert line, f"tocsin dev exited before serving: {''.join(seen)}"
        seen.append(line)
        if "Tocsin is running" in line:
            return "".join(seen)


#: The demo's heartbeat monitor (services/dev/demo.yaml): judged late only 30 s after start.
DEMO_HEARTBEAT = "00000000-0000-4000-8000-00000000d3e0"


def ping_demo_heartbeat(base: str, timeout: float = 60) -> None:
    """Ping the demo's heartbeat as its comment says a user would (curl, the web's ping
    endpoint): it is judged ok at once instead of late 30 s after start. 404 until the
    projector has shown the configuration; 503 while the web's NATS connection comes up."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/ping/{DEMO_HEARTBEAT}", timeout=30) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:  # an HTTPError too
            last = str(exc)
        time.sleep(0.2)
    raise AssertionError(f"the demo heartbeat's ping not taken in {timeout}s: {last}")


def wait_host(base: str, agent: str, timeout: float = 60) -> dict:
    """``agent``'s host in /api/hosts, once its figures are there."""
    deadline = time.monotonic() + timeout
    hosts: list[dict] = []
    while time.monotonic() < deadline:
        try:
            hosts = get(f"{base}/api/hosts")  # type: ignore[assignment]
        except OSError:
            hosts = []
        for h in hosts:
            if h["agent"] == agent:
                return h
        time.sleep(0.2)
    raise AssertionError(f"host {agent} not shown in {timeout}s: {hosts}")


def wait_judged(base: str, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    tasks: list[dict] = []
    while time.monotonic() < deadline:
        try:
            tasks = get(f"{base}/api/tasks")  # type: ignore[assignment]
        except OSError:
            tasks = []
        if tasks and all(t["severity"] != "pending" for t in tasks):
            return tasks
        time.sleep(0.2)
    raise AssertionError(f"tasks not judged in {timeout}s: {tasks}")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def leftovers(data: Path) -> list[str]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(data) in cmd:
            found.append(cmd)
    return found


def wait_gone(data: Path, timeout: float = 30) -> list[str]:
    """The processes still running under ``data``, once they stop or ``timeout`` passes: a
    child the kernel has not finished reaping may still be listed just after ``stop``."""
    deadline = time.monotonic() + timeout
    found = leftovers(data)
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = leftovers(data)
    return found


def pg_url(data: Path, port: int) -> str:
    """The URL of the PostgreSQL `tocsin dev` runs under ``data`` (its password is kept there)."""
    return PostgresServer(data / "postgres", port=port).url
