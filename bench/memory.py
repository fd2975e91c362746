"""Memory per scheduled task, per in-flight request and per live (SSE) client.

Memory does not depend on CPU load, so unlike the throughput benches this one gives the
same figures on a busy machine. Each figure is the growth of a fresh process's memory
between a small and a large population of the same objects the services build, divided
by the difference in population, so the fixed cost (imports, sessions) cancels out:

- task: what the scheduler keeps per task (the parsed configuration, its request group,
  the plan entry, the task's and group's state, the id of the group's last request);
- in-flight request: what the agent holds while a request waits for its answer (the decoded
  request, its task, aiohttp's connection and response state) against a target that holds
  every answer (in a process of its own, so its memory is not counted);
- SSE client: what the web's live hub holds per open page (its queue and stream).

Each is given as Python's traced memory (``tracemalloc``: the objects themselves) and as
resident memory (RSS, measured without tracemalloc: the objects plus the allocator's slack
and what parsing left behind, the figure to plan with). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.common import target, wait_port_http, write_config
from checks.judge import task_state
from checks.probe import Prober
from configuration import config as configuration
from events import codec, lenient, subjects
from events.types import CheckRequested, CheckSpec
from services.scheduler.plan import spread
from services.scheduler.state import SchedulerOptions, SchedulerState
from services.web.live import Hub


def rss() -> int:
    """Resident set size now, in bytes (/proc: ru_maxrss is a high-water mark)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


async def measure(kind: str, n: int, traced: bool, url: str) -> int:
    """Bytes ``n`` units of ``kind`` add to this process: traced by Python, or resident."""
    build: dict[str, Callable[[int], Awaitable[object]]] = {
        "task": scheduler_tasks,
        "request": lambda n: InFlight(url).start(n),
        "page": lambda n: Pages().start(n),
    }
    gc.collect()
    if traced:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if traced else rss()
    held = await build[kind](n)
    gc.collect()
    grown = (tracemalloc.get_traced_memory()[0] if traced else rss()) - before
    release = getattr(held, "release", None)
    if release is not None:
        await release()
    return grown


def per_unit(kind: str, small: int, large: int, url: str = "") -> dict[str, Any]:
    """Bytes per unit from ``small`` to ``large`` units, each count built in a fresh process
    (so neither the other count's freed memory nor tracemalloc's own cost blurs it)."""

    def child(n: int, traced: bool) -> int:
        args = [sys.executable, __file__, "--child", kind, str(n), url]
        out = subprocess.run([*args, "traced" if traced else "rss"], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{kind} x {n}: {out.stderr.strip().splitlines()[-1]}")
        return int(out.stdout.split()[-1])

    out: dict[str, Any] = {"n": [small, large]}
    for mode, traced in (("traced_bytes", True), ("rss_bytes", False)):
        out[mode] = round((child(large, traced) - child(small, traced)) / (large - small))
    return out


async def scheduler_tasks(n: int) -> SchedulerState:
    """A scheduler's state for ``n`` tasks (``n // 2`` URLs with two checks each), filled as
    ``Scheduler._use`` and a first round of requests fill it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_config(Path(tmp) / "tocsin.yaml", "http://127.0.0.1:9", n // 2, "1m")
        state = SchedulerState(SchedulerOptions("nats://127.0.0.1:9", str(path)))
        state.config = configuration.parse(str(path))
    now = time.time()
    groups: dict[str, list] = {}
    for task in state.config.tasks.values():
        groups.setdefault(task.group, []).append(task)
    for gid, tasks in groups.items():
        state.plan.set(gid, spread(gid, min(t.frequency for t in tasks), now))
        for t in tasks:
            state.task_states[t.id] = task_state("ok", 0)
        state.group_states[gid].last_completion = 1
        for location in tasks[0].locations:
            state.requests[(location, gid)] = f"{gid}.{location}.{int(now * 1000)}"
        state.outstanding.add(gid, now, 120.0)
    state.groups = groups
    return state


class InFlight:
    """``n`` probes waiting for answers the target holds back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prober = Prober(concurrency=100_000)
        self.tasks: list[asyncio.Task[object]] = []

    async def start(self, n: int) -> InFlight:
        await self.prober.__aenter__()
        wire = [
            codec.encode(
                CheckRequested(
                    at=time.time(),
                    request=f"g{i}.default.1",
                    group=f"g{i}",
                    location="default",
                    url=f"{self.url}/held?u={i}",
                    method="GET",
                    ip_version=4,
                    timeout=120,
                    due=time.time(),
                    checks=[
                        CheckSpec(f"t{i}a", "status-is", 200),
                        CheckSpec(f"t{i}b", "body-contains", "fine"),
                    ],
                )
            )
            for i in range(n)
        ]

        async def one(i: int, data: bytes) -> object:
            # As the agent decodes it (no cache entry per subject left behind).
            req = lenient.decode(data, subjects.requested("default", f"g{i}"))
            assert isinstance(req, CheckRequested)
            return await self.prober.run(req, "bench", "default")

        self.tasks = [asyncio.create_task(one(i, d)) for i, d in enumerate(wire)]
        del wire
        # Every request sent and waiting: give the loop time to connect them all.
        await asyncio.sleep(2 + n / 500)
        ended = [t for t in self.tasks if t.done()]
        if ended:
            raise RuntimeError(f"{len(ended)} of {n} requests ended early: {ended[0].result()}")
        return self

    async def release(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.prober.__aexit__()


class Pages:
    """``n`` open live streams on one hub, each past its first frame and waiting."""

    def __init__(self) -> None:
        self.hub = Hub("postgresql://unused")
        self.readers: list[asyncio.Task[None]] = []

    async def start(self, n: int) -> Pages:
        async def read() -> None:
            async for _frame in self.hub.stream():
                pass

        self.readers = [asyncio.create_task(read()) for _ in range(n)]
        await asyncio.sleep(0.5)
        assert len(self.hub.clients) == n
        return self

    async def release(self) -> None:
        for t in self.readers:
            t.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=20_000, help="the larger task population")
    ap.add_argument("--requests", type=int, default=2_000, help="the larger in-flight count")
    ap.add_argument("--pages", type=int, default=2_000, help="the larger SSE client count")
    ap.add_argument(
        "--child", nargs=4, metavar=("KIND", "N", "URL", "MODE"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.child:
        kind, n, url, mode = args.child
        print(await measure(kind, int(n), mode == "traced", url))
        return
    out: dict[str, Any] = {}
    out["per_task"] = per_unit("task", args.tasks // 10, args.tasks)
    print("per task:", out["per_task"], flush=True)
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        proc, url = target(Path(tmp))
        try:
            await wait_port_http(f"{url}/healthy")
            async with aiohttp.ClientSession() as s:
                await s.post(f"{url}/_control/held", data={"delay": "600", "body": "fine"})
            out["per_in_flight_request"] = per_unit(
                "request", args.requests // 10, args.requests, url
            )
        finally:
            proc.stop()
    print("per in-flight request:", out["per_in_flight_request"], flush=True)
    out["per_sse_client"] = per_unit("page", args.pages // 10, args.pages)
    print("per SSE client:", out["per_sse_client"], flush=True)
    out["scheduler_mb_at_100k_tasks"] = round(out["per_task"]["rss_bytes"] * 100_000 / 1e6, 1)
    print(json.dumps({"bench": "memory", **out}))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
