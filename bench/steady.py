"""Steady-state benchmark: many tasks at a 1-minute frequency, for a few minutes.

    .venv/bin/python bench/steady.py [--urls 50000] [--minutes 3] [--baseline DIR]

50,000 URLs x 2 checks = 100,000 tasks, each due once a minute, against a loopback
target; scheduler, agent and projector are processes of their own. Reports:

- dispatch lateness: p50/p99 of (request time - due time), from the requests in the log;
- the scheduler's CPU and resident memory, sampled each second (RSS ten times a second),
  its peak and its last figure each against issue 19's 150 MB: CPU seconds until its first
  request (reading the file and the log), then CPU per request answered after the first
  minute (one request sent, one completion judged),
  and from it CPU seconds per minute at the full rate (one request per URL a minute; 6 s
  per minute is 10 % of a core). CPU seconds, because a loaded machine stretches the wall
  clock and slows the agent, not the scheduler's work per request;
- projector lag: p99 of (commit of the batch holding a completion - completion time), the
  commit time being when the projector's NOTIFY for that sequence arrived;
- results per second over the run after the first minute (the first runs are spread over
  the first minute, so that minute ramps up).

``--baseline DIR``: first the same run with the scheduler of the source tree DIR (another
revision: ``git archive REV | tar -x -C DIR``), everything else from this tree, then this
tree's; the last line then holds both and this tree's scheduler figures as ratios to the
baseline's. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import psutil

from bench.common import ROOT, servers, service, target, target_of, wait_port_http, write_config
from events import codec, subjects
from runtime import bus


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """One run, the scheduler from the source tree ``root``."""
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
                work,
                "scheduler",
                "scheduler",
                "--nats-url",
                nurl,
                "--config",
                str(config),
                root=root,
            )
            procs.append(scheduler)
            ps = psutil.Process(scheduler.pid)
            start = time.time()
            cpu: list[float] = []
            rss: list[float] = []
            last_cpu = sum(ps.cpu_times()[:2])
            while time.time() - start < args.minutes * 60:
                # RSS ten times a second: the start's peak (the read) lasts a second or two.
                for _ in range(10):
                    await asyncio.sleep(0.1)
                    rss.append(ps.memory_info().rss / 2**20)
                now_cpu = sum(ps.cpu_times()[:2])
                cpu.append(now_cpu - last_cpu)
                last_cpu = now_cpu
            end = time.time()
            scheduler.stop()
            await asyncio.sleep(3)
            await listener.close()
            nc = await bus.connect(nurl, "bench")
            js = nc.jetstream()
            requested = [m async for m in bus.replay(js, subjects.REQUESTED_ALL)]
            sent = [ev for m in requested if (ev := codec.decode(m.data, m.subject))]
            late = [ev.at - ev.due for ev in sent]  # type: ignore[union-attr]
            sent_at = sorted(ev.at for ev in sent)  # type: ignore[union-attr]
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
    # CPU seconds, not shares of the wall clock: on a loaded machine the scheduler's start
    # stretches past its first minute and the agent answers fewer requests a minute, so
    # the steady figure is per request, and per minute at 100,000 tasks from it.
    first_request = int(sent_at[0] - start) + 1 if sent_at else len(cpu)
    startup = sum(cpu[:first_request])
    steady_cpu = sum(cpu[60:])
    # Per request answered (each is one completion judged and, at a steady rate, one request
    # sent): what the scheduler did in the window, against what it dispatched and judged.
    answered = len(steady)
    ms_per_request = steady_cpu / max(answered, 1) * 1000
    window = max(end - (start + 60), 1e-6)
    result = {
        "scheduler": str(root),
        "tasks": args.urls * 2,
        "minutes": args.minutes,
        "requests": len(late),
        "lateness_p50_s": round(pct(late, 50), 3),
        "lateness_p99_s": round(pct(late, 99), 3),
        "lateness_max_s": round(max(late, default=0), 3),
        "scheduler_cpu_s_to_first_request": round(startup, 2),
        "scheduler_cpu_s_per_min": round(steady_cpu / max(len(cpu) - 60, 1) * 60, 2),
        "scheduler_cpu_ms_per_request": round(ms_per_request, 3),
        # One request per group: 50,000 groups a minute at the default size.
        "scheduler_cpu_s_per_min_at_full_rate": round(ms_per_request * args.urls / 1000, 2),
        "scheduler_cpu_max": round(max(cpu), 3),
        "scheduler_rss_mb_max": round(max(rss), 1),
        "scheduler_rss_mb_end": round(rss[-1], 1),
        "projector_lag_p50_s": round(pct(lags, 50), 3),
        "projector_lag_p99_s": round(pct(lags, 99), 3),
        "results_per_s": round(checks / window, 1),
        "targets": {
            # The start's peak too: reading the file and the log is when the most is held.
            "scheduler_rss_mb_max": target_of(round(max(rss), 1), at_most=150),
            "scheduler_rss_mb_end": target_of(round(rss[-1], 1), at_most=150),
            "scheduler_share_of_a_core_at_full_rate": target_of(
                round(ms_per_request * args.urls / 60_000, 3), at_most=0.10
            ),
        },
    }
    print(
        f"{result['tasks']:,} tasks / minute for {args.minutes} min, scheduler of {root}: "
        f"lateness p50 {result['lateness_p50_s']}s p99 {result['lateness_p99_s']}s; scheduler "
        f"CPU {result['scheduler_cpu_s_to_first_request']} s to its first request, then "
        f"{result['scheduler_cpu_ms_per_request']} ms per request "
        f"({result['scheduler_cpu_s_per_min_at_full_rate']} s per minute at full rate); RSS max "
        f"{result['scheduler_rss_mb_max']} MB, at the end {result['scheduler_rss_mb_end']} MB; "
        f"projector lag p99 {result['projector_lag_p99_s']}s; "
        f"{result['results_per_s']:,} results/s",
        flush=True,
    )
    return result


#: The scheduler's figures compared with the baseline's (lower is better for each).
COMPARED = (
    "scheduler_cpu_s_to_first_request",
    "scheduler_cpu_ms_per_request",
    "scheduler_rss_mb_max",
    "scheduler_rss_mb_end",
    "lateness_p99_s",
)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=50_000, help="URLs, two checks each")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--agents", type=int, default=1)
    ap.add_argument("--baseline", type=Path, help="source tree of the scheduler to compare with")
    args = ap.parse_args()
    if args.baseline is None:
        print(json.dumps({"bench": "steady", **await run(args, ROOT)}))
        return
    baseline = await run(args, args.baseline.resolve())
    this = await run(args, ROOT)
    ratios = {k: round(this[k] / baseline[k], 3) if baseline[k] else None for k in COMPARED}
    print(
        json.dumps(
            {"bench": "steady", "baseline": baseline, "this": this, "ratio_to_baseline": ratios}
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
