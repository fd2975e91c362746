"""What the benchmarks share: throwaway servers, a loopback target, services as processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import aiohttp
import asyncpg
import nats

from configuration import config as configuration
from events import codec, streams, subjects
from events.types import TaskJudged
from runtime.embedded import NatsServer, PostgresServer, free_port
from services.web.runlogs import RunLogs

ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, target: str, urls: int, frequency: str, timeout: str = "10s") -> Path:
    """``urls`` distinct URLs on one loopback target (a query string each), two checks each."""
    lines = [
        "general:",
        f"  frequency: {frequency}",
        "  ipv6: false",
        f"  timeout: {timeout}",
        "websites:",
        f"  - domain: {target}",
        "    paths:",
    ]
    for i in range(urls):
        lines += [
            f"      - path: /healthy?u={i}",
            "        checks:",
            "          - status-is: 200",
            "          - body-contains: fine",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary directory, removed once the bench is done with it: a run leaves up to 2 GB
    of PostgreSQL and JetStream data, and ``make bench`` makes several. A failed run keeps it,
    said on stderr, for its logs."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    except BaseException:
        print(f"the bench's servers and logs are kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def servers(keep: str | None = None) -> Iterator[tuple[NatsServer, PostgresServer, Path]]:
    """A fresh NATS and PostgreSQL in a temporary directory (``keep``: in that one, left for
    its caller to remove), on free ports."""
    with contextlib.ExitStack() as stack:
        work = Path(keep) if keep else stack.enter_context(scratch("tocsin-bench-"))
        # Its monitoring port: the drain counts the messages and JetStream API calls per request.
        nats_server = NatsServer(work / "nats", extra_args=["-m", str(free_port())]).start()
        pg = PostgresServer(work / "pg").start()
        try:
            yield nats_server, pg, work
        finally:
            nats_server.stop()
            pg.stop()


class Proc:
    """``python -m ARGS`` from the source tree at ``root`` (another one: an earlier commit's)."""

    def __init__(self, args: list[str], log: Path, root: Path = ROOT) -> None:
        out = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        out.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def target_of(value: float, at_least: float | None = None, at_most: float | None = None) -> dict:
    """A figure against issue 19's target for it, for the JSON line: whether it is met."""
    if at_least is not None:
        return {"value": value, "target": f">= {at_least:g}", "met": value >= at_least}
    assert at_most is not None
    return {"value": value, "target": f"<= {at_most:g}", "met": value <= at_most}


@contextlib.asynccontextmanager
async def web_following_nothing(nats_url: str) -> AsyncIterator[None]:
    """What a deployed web tells the agents while nobody has a live page open: it follows no
    run, so they tell none (``services/agent/watched.py``; with no web at all they would tell
    every run)."""
    nc = await nats.connect(nats_url)
    runlogs = RunLogs()
    await runlogs.start(nc)
    await nc.flush()
    try:
        yield
    finally:
        await runlogs.close()
        await nc.close()


def service(work: Path, name: str, *args: str, root: Path = ROOT) -> Proc:
    """A service of this tree, or of the source tree ``root`` (another revision, to compare)."""
    return Proc(["services.cli", *args], work / f"{name}.log", root)


def target(work: Path) -> tuple[Proc, str]:
    """The demo website in a process of its own, so it does not share the bench's loop."""
    port = free_port()
    proc = Proc(["services.cli", "demo-target", "--port", str(port)], work / "target.log")
    return proc, f"http://127.0.0.1:{port}"


async def wait_port_http(url: str, timeout: float = 20) -> None:

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(f"{url}/healthy") as r:
                    await r.read()
                    return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def publish_all(
    js,
    items: Sequence[tuple[str, bytes, dict[str, str] | None]],  # type: ignore[no-untyped-def]
    window: int = 1000,
) -> None:
    """Publish with up to ``window`` acks outstanding (awaiting each one is 7x slower)."""
    pending: list[asyncio.Future] = []  # type: ignore[type-arg]
    for subject, data, headers in items:
        pending.append(await js.publish_async(subject, data, headers=headers))
        if len(pending) >= window:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def all_due_at(nats_url: str, config_path: Path, due: float) -> int:
    """Make every group of the configuration due at ``due``: publish, for each, the judgement
    a previous scheduler would have left (the scheduler restores its plan from those)."""
    cfg = configuration.parse(config_path)
    groups = sorted({t.group for t in cfg.tasks.values()})
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await streams.ensure(js, cfg.locations)
    items = [
        (
            subjects.judged(g),
            codec.encode(
                TaskJudged(at=time.time(), group=g, completion=0, next_run=due, judgements=[])
            ),
            None,
        )
        for g in groups
    ]
    await publish_all(js, items)
    await nc.close()
    return len(groups)


@contextlib.asynccontextmanager
async def pg(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def count_results(conn: asyncpg.Connection) -> int:
    """Result rows so far, asked on the caller's connection: a connection per poll was a
    PostgreSQL backend forked every 50 ms, on the two cores the measured pipeline runs on."""
    try:
        return int(await conn.fetchval("SELECT count(*) FROM tocsin.results"))
    except asyncpg.UndefinedTableError:
        return 0
