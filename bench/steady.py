"""Steady-state benchmark: many tasks at a 1-minute frequency, for a few minutes.

    .venv/bin/python bench/steady.py [--urls 50000] [--minutes 3]

50,000 URLs x 2 checks = 100,000 tasks, each due once a minute, against a loopback
target; scheduler, agent and projector are processes of their own. Reports:

- dispatch lateness: p50/p99 of (request time - due time), from the requests in the log;
- the scheduler's CPU (share of one core) and resident memory, sampled each second;
- projector lag: p99 of (commit of the batch holding a completion - completion time), the
  commit time being when the projector's NOTIFY for that sequence arrived;
- results per second over the run after the first minute (the first runs are spread over
  the first minute, so that minute ramps up).

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import psutil

from bench.common import servers, service, target, wait_port_http, write_config
from events import codec, subjects
from runtime import bus


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=50_000, help="URLs, two checks each")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--agents", type=int, default=1)
    args = ap.parse_args()
    with servers() as (nats_server, pg, work):
        web, base = target(work)
        procs = [web]
        try:
            await wait_port_http(base)
            config = write_config(work / "tocsin.yaml", base, args.urls, "1m")
            nurl = nats_server.url
            service(work, "apply", "config", "apply", str(config), "--nats-url", nurl).proc.wait()
            procs.append(
                service(
                    work, "projector", "projector", "--nats-url", nurl, "--database-url", pg.url
                )
            )
            procs += [
                service(work, f"agent{i}", "agent", "--nats-url", nurl, "--name", f"a{i}")
                for i in range(args.agents)
            ]
            await asyncio.sleep(2)
            notes: list[tuple[float, int]] = []
            listener = await asyncpg.connect(pg.url)
            await listener.add_listener(
                "tocsin_changed",
                lambda *a: notes.append((time.time(), json.loads(a[3]).get("seq", 0))),
            )
            scheduler = service(
                work, "scheduler", "scheduler", "--nats-url", nurl, "--config", str(config)
            )
            procs.append(scheduler)
            ps = psutil.Process(scheduler.pid)
            start = time.time()
            cpu: list[float] = []
            rss: list[float] = []
            last_cpu = sum(ps.cpu_times()[:2])
            while time.time() - start < args.minutes * 60:
                await asyncio.sleep(1)
                now_cpu = sum(ps.cpu_times()[:2])
                cpu.append(now_cpu - last_cpu)
                last_cpu = now_cpu
                rss.append(ps.memory_info().rss / 2**20)
            end = time.time()
            scheduler.stop()
            await asyncio.sleep(3)
            await listener.close()
            nc = await bus.connect(nurl, "bench")
            js = nc.jetstream()
            requested = [m async for m in bus.replay(js, subjects.REQUESTED_ALL)]
            late = [ev.at - ev.due for m in requested if (ev := codec.decode(m.data, m.subject))]  # type: ignore[union-attr]
            comps = [
                (m.metadata.sequence.stream, codec.decode(m.data, m.subject))
                async for m in bus.replay(js, subjects.COMPLETED_ALL)
            ]
            await nc.close()
        finally:
            for p in procs:
                p.stop()
    notes.sort(key=lambda n: n[1])
    seqs = [s for _, s in notes]
    lags = []
    for seq, ev in comps:
        i = bisect.bisect_left(seqs, seq)
        if i < len(notes):
            lags.append(notes[i][0] - ev.at)  # type: ignore[union-attr]
    steady = [ev for _, ev in comps if ev.at >= start + 60]  # type: ignore[union-attr]
    checks: int = sum(len(ev.outcomes) for ev in steady)  # type: ignore[union-attr, misc]
    window = max(end - (start + 60), 1e-6)
    result = {
        "tasks": args.urls * 2,
        "minutes": args.minutes,
        "requests": len(late),
        "lateness_p50_s": round(pct(late, 50), 3),
        "lateness_p99_s": round(pct(late, 99), 3),
        "lateness_max_s": round(max(late, default=0), 3),
        "scheduler_cpu_avg": round(sum(cpu) / len(cpu), 3),
        "scheduler_cpu_max": round(max(cpu), 3),
        "scheduler_rss_mb_max": round(max(rss), 1),
        "projector_lag_p50_s": round(pct(lags, 50), 3),
        "projector_lag_p99_s": round(pct(lags, 99), 3),
        "results_per_s": round(checks / window, 1),
    }
    print(
        f"{result['tasks']:,} tasks / minute for {args.minutes} min: lateness p50 "
        f"{result['lateness_p50_s']}s p99 {result['lateness_p99_s']}s; scheduler CPU "
        f"{result['scheduler_cpu_avg']:.0%} of a core (max {result['scheduler_cpu_max']:.0%}),"
        f" RSS {result['scheduler_rss_mb_max']} MB; projector lag p99 "
        f"{result['projector_lag_p99_s']}s; {result['results_per_s']:,} results/s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
