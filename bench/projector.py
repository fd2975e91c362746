"""Projector benchmark: fold rate over pre-published events, a plain COPY, a full rebuild.

    .venv/bin/python bench/projector.py [--events 1000000]

The log is filled first (a configuration of 6,000 tasks in 3,000 groups, then the life of
each request as the services write it: ``check.requested``, ``check.started``,
``check.completed`` with two outcomes and ``task.judged`` with two judgements). Then, each
timed on its own:

1. the projector (``tocsin projector``, a process) folds the whole log from sequence 1,
   timed from its first commit to its last, wall clock and the process's CPU time;
2. a plain asyncpg COPY of the result rows the projector wrote into an identical empty
   table: the floor of what writing rows costs in this PostgreSQL, in this run;
3. ``tocsin projector rebuild`` (a process): the whole log replayed into fresh tables and
   swapped in, wall clock and CPU time.

``--tree DIR`` runs another source tree's projector and rebuild (an earlier revision, to
compare in the same minutes; the bench and its log are this one's). ``pg_cpu_us_per_event``
is PostgreSQL's CPU time (every process of the server) during the fold, per event: on two
cores, the fold's rate is bounded by the projector's CPU per event and PostgreSQL's together.

The last line printed is one JSON object; ``fold_vs_copy`` is the fold's events/s over
COPY's rows/s (about one result row per event in a real log: two outcomes every four events
here, so the ratio is the stricter of the two).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import nats
import psutil

from bench.common import ROOT, pg, publish_all, servers, service, target_of, write_config
from checks import request
from configuration import config as configuration
from configuration.inforce import apply_config
from events import codec, streams, subjects
from events.types import (
    CheckCompleted,
    CheckOutcome,
    CheckStarted,
    Judgement,
    Observation,
    TaskDef,
    TaskJudged,
)
from readmodel import ensure_schema
from runtime.embedded import NatsServer, PostgresServer


def events(cfg: configuration.Config, n: int, first_seq: int) -> list[tuple[str, bytes, None]]:
    """``n`` events (rounded down to whole requests) to be stored from ``first_seq`` on."""
    groups: dict[str, list[TaskDef]] = {}
    for t in cfg.tasks.values():
        groups.setdefault(t.group, []).append(t)
    order = sorted(groups)
    out: list[tuple[str, bytes, None]] = []
    now = time.time() - n
    for i in range(n // 4):
        g = order[i % len(order)]
        tasks = groups[g]
        at = now + i
        req = request.build(tasks, "default", request.scheduled_id(g, "default", at), at, at)
        completed = CheckCompleted(
            at=at + 0.02,
            request=req.request,
            group=g,
            agent="a1",
            location="default",
            started=at + 0.01,
            observation=Observation(status=200, elapsed_ms=3.2, body_bytes=24),
            outcomes=[CheckOutcome(t.id, t.check, "success") for t in tasks],
        )
        judged = TaskJudged(
            at=at + 0.03,
            group=g,
            completion=first_seq + len(out) + 2,
            next_run=at + 60,
            judgements=[
                Judgement(t.id, "ok" if i % 7 else "critical", "ok", "fine") for t in tasks
            ],
        )
        started = CheckStarted(
            at=at + 0.01, request=req.request, group=g, agent="a1", location="default", delivery=1
        )
        out += [
            (subjects.requested("default", g), codec.encode(req), None),
            (subjects.started("a1", "default", g), codec.encode(started), None),
            (subjects.completed("a1", "default", g), codec.encode(completed), None),
            (subjects.judged(g), codec.encode(judged), None),
        ]
    return out


async def position(conn: asyncpg.Connection) -> int:
    try:
        return int(await conn.fetchval("SELECT seq FROM tocsin.position"))
    except asyncpg.UndefinedTableError:
        return 0


def pg_cpu(server: PostgresServer) -> float:
    """CPU seconds of the PostgreSQL server's processes so far (those alive now)."""
    return sum(pg_cpus(server).values())


def pg_cpus(server: PostgresServer) -> dict[int, float]:
    """CPU seconds so far of each process of the PostgreSQL server alive now, by pid."""
    assert server.proc is not None
    main = psutil.Process(server.proc.pid)
    out = {}
    for ps in [main, *main.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            out[ps.pid] = cpu(ps)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument(
        "--profile",
        help="write a py-spy flame graph (.svg) or collapsed stacks (.txt) of the projector here "
        "(and of the rebuild next to it: NAME.rebuild.svg or .txt)",
    )
    ap.add_argument("--tree", type=Path, default=ROOT, help="the source tree of the projector")
    ap.add_argument("--no-rebuild", action="store_true", help="the fold and COPY only")
    args = ap.parse_args()
    tree = args.tree.resolve()
    with servers() as (nats_server, server, work):
        config = write_config(work / "tocsin.yaml", "http://127.0.0.1:9", 3000, "1m")
        cfg = configuration.parse(config)
        nc = await nats.connect(nats_server.url, max_outstanding_pings=10)
        js = nc.jetstream()
        await streams.ensure(js, cfg.locations)
        await apply_config(js, cfg, "bench")
        first = (await js.stream_info(streams.EVENTS)).state.last_seq + 1
        batch = events(cfg, args.events - first + 1, first)
        start = time.perf_counter()
        await publish_all(js, batch)
        publish_s = time.perf_counter() - start
        last = (await js.stream_info(streams.EVENTS)).state.last_seq
        await nc.close()
        print(f"published {last:,} events in {publish_s:.1f}s", file=sys.stderr)

        # 1. The projector, from sequence 1: timed from its first commit (startup aside).
        proc = service(
            work,
            "projector",
            "projector",
            "--nats-url",
            nats_server.url,
            "--database-url",
            server.url,
            root=tree,
        )
        if args.profile:  # where the projector's time goes, as a flame graph (py-spy)
            profile(args.profile, proc.pid)
        ps = psutil.Process(proc.pid)
        seen = 0
        # One connection asks (a new one each time would be a backend forked each time).
        async with pg(server.url) as polling:
            while seen == 0:
                await asyncio.sleep(0.02)
                seen = await position(polling)
            start, cpu_start, from_seq = time.perf_counter(), cpu(ps), seen
            pg_start = pg_cpu(server)
            while seen < last:
                await asyncio.sleep(0.05)
                seen = await position(polling)
            fold_s = time.perf_counter() - start
            fold_cpu = cpu(ps) - cpu_start
            fold_pg_cpu = pg_cpu(server) - pg_start
        proc.stop()
        folded = last - from_seq
        print(f"projector folded {folded:,} events in {fold_s:.1f}s", file=sys.stderr)

        # 2. COPY of the result rows the projector wrote, into an identical, empty table.
        async with pg(server.url) as conn:
            rows = await conn.fetch("SELECT * FROM tocsin.results")
            await ensure_schema(conn, "copybench")
            start = time.perf_counter()
            for i in range(0, len(rows), 50_000):
                await conn.copy_records_to_table(
                    "results", records=rows[i : i + 50_000], schema_name="copybench"
                )
            copy_s = time.perf_counter() - start
            await conn.execute("DROP SCHEMA copybench CASCADE")
        print(f"COPY of the {len(rows):,} result rows: {copy_s:.1f}s", file=sys.stderr)

        # 3. A full rebuild.
        rebuilt = (
            None
            if args.no_rebuild
            else await rebuild(work, nats_server, server, tree, args.profile)
        )
    fold_rate, copy_rate = folded / fold_s, len(rows) / copy_s
    targets = {
        "fold_events_per_s": target_of(round(fold_rate), at_least=50_000),
        "fold_vs_copy": target_of(round(fold_rate / copy_rate, 3), at_least=0.25),
    }
    result: dict[str, Any] = {
        "bench": "projector",
        "tree": str(tree),
        "events": last,
        "fold_events_per_s": round(fold_rate),
        "fold_s": round(fold_s, 1),
        "fold_cpu_us_per_event": round(fold_cpu / folded * 1e6, 1),
        "pg_cpu_us_per_event": round(fold_pg_cpu / folded * 1e6, 1),
        "result_rows": len(rows),
        "copy_rows_per_s": round(copy_rate),
        "copy_s": round(copy_s, 1),
        "fold_vs_copy": round(fold_rate / copy_rate, 3),
        "publish_events_per_s": round(last / publish_s),
        "targets": targets,
    }
    print(
        f"projector: {fold_rate:,.0f} events/s, {result['fold_cpu_us_per_event']} µs CPU each "
        f"(PostgreSQL: {result['pg_cpu_us_per_event']} µs); COPY of its {len(rows):,} result "
        f"rows: {copy_rate:,.0f} rows/s ({fold_rate / copy_rate:.0%})"
    )
    if rebuilt is not None:
        rebuild_s, rebuild_cpu, own, rebuild_pg = rebuilt
        result |= {
            "rebuild_s": round(rebuild_s, 1),
            "rebuild_events_per_s": round(last / rebuild_s),
            "rebuild_cpu_us_per_event": round(rebuild_cpu / last * 1e6, 1),
            "rebuild_own_cpu_us_per_event": round(own / last * 1e6, 1),
            "rebuild_pg_cpu_us_per_event": round(rebuild_pg / last * 1e6, 1),
        }
        # Scaled to 1M events when run with fewer (--events).
        targets["rebuild_s_per_1m_events"] = target_of(round(rebuild_s * 1e6 / last, 1), at_most=25)
        print(
            f"rebuild of {last:,} events: {rebuild_s:.1f}s ({last / rebuild_s:,.0f} events/s, "
            f"{result['rebuild_cpu_us_per_event']} µs CPU each, PostgreSQL "
            f"{result['rebuild_pg_cpu_us_per_event']})"
        )
    print(json.dumps(result))


async def rebuild(
    work: Path, nats_server: NatsServer, server: PostgresServer, tree: Path, profiled: str | None
) -> tuple[float, float, float, float]:
    """A full rebuild, as an operator runs it (``tocsin projector rebuild``, a process): its
    wall clock, the CPU time the kernel accounts to the waited-for child (its feed process
    included), its own (the last one read while it ran) and PostgreSQL's meanwhile."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # By pid, read while it runs: its backend ends with it, before the last reading.
    pg_start = pg_cpus(server)
    pg_seen = dict(pg_start)
    start = time.perf_counter()
    rebuilding = service(
        work,
        "rebuild",
        "projector",
        "--nats-url",
        nats_server.url,
        "--database-url",
        server.url,
        "rebuild",
        root=tree,
    )
    if profiled:  # the rebuild's, next to the projector's
        path = Path(profiled)
        profile(str(path.with_name(f"{path.stem}.rebuild{path.suffix}")), rebuilding.pid)
    own = 0.0
    watched = psutil.Process(rebuilding.pid)
    while rebuilding.proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            own = cpu(watched)
        pg_seen |= pg_cpus(server)
        await asyncio.sleep(0.1)
    if rebuilding.proc.returncode != 0:
        sys.exit(f"rebuild failed: see {work / 'rebuild.log'}")
    rebuild_s = time.perf_counter() - start
    pg_seen |= pg_cpus(server)
    pg_used = sum(pg_seen.values()) - sum(pg_start.values())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return rebuild_s, children, own, pg_used


def profile(out: str, pid: int) -> None:
    """py-spy records ``pid`` for 20 s into ``out`` (.txt: collapsed stacks, to read as text)."""
    # the venv's py-spy, else one on PATH (a venv of its own: it needs no project code)
    venv_spy = Path(sys.executable).parent / "py-spy"
    spy = [str(venv_spy) if venv_spy.exists() else shutil.which("py-spy") or "py-spy"]
    spy += ["record", "-o", out, "-p", str(pid), "-d", "20", "-r", "50", "--nonblocking"]
    if out.endswith(".txt"):
        spy += ["--format", "raw"]
    subprocess.Popen(spy)


def cpu(ps: psutil.Process) -> float:
    """User and system CPU seconds of a process so far."""
    times = ps.cpu_times()
    return times.user + times.system


if __name__ == "__main__":
    asyncio.run(main())
