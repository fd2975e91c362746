"""How fast the dashboard answers with 10,000 tasks (target: under 300 ms).

Seeds the read models through the projector's own fold (config, results and judgements as
events), starts ``tocsin web`` as a process, and times sequential requests of the
dashboard: the first page, a severity filter, a text filter, the htmx live refresh and a
deep page. Prints p50/p99 per case.

    .venv/bin/python -m bench.dashboard [--tasks 10000] [--requests 200]

Uses DATABASE_URL when set, otherwise a throwaway embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

from events.types import (
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    CheckSpec,
    ConfigApplied,
    Judgement,
    Observation,
    TaskDef,
    TaskJudged,
)
from readmodel import ensure_schema
from runtime.embedded import PostgresServer, free_port
from services.projector.service import apply_batch

SEVERITIES = ["ok"] * 90 + ["warning"] * 5 + ["critical"] * 3 + ["unknown"] * 2


async def seed(url: str, n: int, results_per_task: int = 3) -> None:
    rnd = random.Random(7)
    tasks = [
        TaskDef(
            id=f"task-{i:06d}",
            group=f"group-{i:06d}",
            domain=f"site{i // 20}.example",
            url=f"https://site{i // 20}.example/page/{i % 20}",
            method="GET",
            ip_version=4,
            check="status-is",
            expected=200,
            frequency=300.0,
        )
        for i in range(n)
    ]
    now = time.time()
    events: list[object] = []
    for k in range(0, n, 1000):
        events.append(
            ConfigApplied(
                at=now - 86400,
                revision="bench",
                source="bench",
                applied_by="bench",
                part=k // 1000 + 1,
                parts=(n + 999) // 1000,
                added=tasks[k : k + 1000],
            )
        )
    for r in range(results_per_task):
        at = now - (results_per_task - r) * 300
        for t in tasks:
            sev = rnd.choice(SEVERITIES)
            ok = sev == "ok"
            events.append(
                CheckRequested(
                    at=at - 1,
                    request=f"{t.id}-{r}",
                    group=t.group,
                    location="default",
                    url=t.url,
                    method=t.method,
                    ip_version=t.ip_version,
                    timeout=t.timeout,
                    due=at - 1,
                    checks=[CheckSpec(t.id, t.check, t.expected)],
                )
            )
            events.append(
                CheckCompleted(
                    at=at,
                    request=f"{t.id}-{r}",
                    group=t.group,
                    agent="bench",
                    location="default",
                    started=at - 0.2,
                    observation=Observation(
                        status=200 if ok else 500, elapsed_ms=rnd.uniform(20, 900)
                    ),
                    outcomes=[
                        CheckOutcome(task=t.id, kind=t.check, status="success" if ok else "failure")
                    ],
                )
            )
            events.append(
                TaskJudged(
                    at=at,
                    group=t.group,
                    completion=0,
                    next_run=at + 300,
                    judgements=[
                        Judgement(
                            task=t.id,
                            severity=sev,  # type: ignore[arg-type]
                            previous=None,
                            reason="bench",
                        )
                    ],
                )
            )
    conn = await asyncpg.connect(url)
    try:
        await ensure_schema(conn)
        batch = list(enumerate(events, start=1))
        for i in range(0, len(batch), 5000):
            await apply_batch(conn, batch[i : i + 5000], notify=False)  # type: ignore[arg-type]
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


@contextlib.contextmanager
def database() -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        pg = PostgresServer(Path(tmp) / "pg").start()
        try:
            yield pg.url
        finally:
            pg.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument(
        "--results",
        type=int,
        default=30,
        help="results per task (30 fills every heartbeat strip)",
    )
    args = ap.parse_args()
    with database() as url:
        t0 = time.perf_counter()
        asyncio.run(seed(url, args.tasks, args.results))
        print(
            f"seeded {args.tasks} tasks with {args.results} results each "
            f"in {time.perf_counter() - t0:.1f}s"
        )
        port = free_port()
        env = dict(
            os.environ, TOCSIN_UNAUTHENTICATED_ACCESS="dashboard", TOCSIN_LOG_LEVEL="warning"
        )
        env.pop("TOCSIN_CONFIG", None)
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "web",
                "--database-url",
                url,
                "--port",
                str(port),
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("web did not start")
                    time.sleep(0.2)
                # The baseline: the same web process answering one trivial query.
                cases = {
                    "baseline /healthz": ("/healthz", {}),
                    "dashboard /": ("/", {}),
                    "severity=critical": ("/", {"severity": "critical"}),
                    "text filter q=site42": ("/", {"q": "site42"}),
                    "htmx live refresh": ("/", {"hx": "1"}),
                    "page 50": ("/", {"page": "50"}),
                }
                print(
                    f"{'case':<24}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'bytes':>9}{'x base':>8}"
                )
                base = 0.0
                figures: dict[str, dict[str, float]] = {}
                for name, (path, params) in cases.items():
                    headers = {"HX-Request": "true"} if params.pop("hx", None) else {}
                    client.get(path, params=params, headers=headers)  # warm up
                    times = []
                    size = 0
                    for _ in range(args.requests):
                        start = time.perf_counter()
                        r = client.get(path, params=params, headers=headers)
                        times.append((time.perf_counter() - start) * 1000)
                        assert r.status_code == 200, r.status_code
                        size = len(r.content)
                    if path == "/":
                        # Each page carries its heartbeat strips: the cost measured is theirs.
                        assert r.text.count("<i class=") >= min(args.results, 30), name
                    p50 = statistics.median(times)
                    base = base or p50
                    print(
                        f"{name:<24}{p50:>9.1f}"
                        f"{percentile(times, 0.99):>9.1f}{max(times):>9.1f}{size:>9}"
                        f"{p50 / base:>8.1f}"
                    )
                    figures[name] = {"p50_ms": round(p50, 2), "ratio": round(p50 / base, 1)}
                print(
                    json.dumps(
                        {"bench": "dashboard", "tasks": args.tasks, "results": args.results}
                        | {k: v for k, v in figures.items()}
                    )
                )
        finally:
            web.terminate()
            web.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
