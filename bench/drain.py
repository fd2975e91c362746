"""Drain benchmark: N tasks all due at once through the whole pipeline, against a bare loop.

    .venv/bin/python bench/drain.py [--urls 12000]

scheduler → NATS → agent → NATS → projector → PostgreSQL, each service a process of its
own, against a loopback aiohttp target (also a process). The clock runs from the moment
every task is due until the last result is in the read model. In the same run, a bare
aiohttp loop makes the same HTTP requests (same concurrency) with nothing else around it:
the physical limit of this machine for these requests. Two checks per URL: a task is one
check, so ``tasks`` = 2 x URLs and ``checks_per_s`` counts results in PostgreSQL.
12,000 URLs by default: a drain of 3,000 lasted under a second, mostly its edges (the first
result a quarter of a second after the due instant, the last batch written), and identical
runs of it printed 0.30 and 0.45 of the bare loop (2026-12-02, fifth sitting).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import psutil

from bench.common import (
    Proc,
    all_due_at,
    count_results,
    scratch,
    servers,
    service,
    target,
    target_of,
    wait_port_http,
    web_following_nothing,
    write_config,
)
from bench.common import pg as pg_connection
from events import codec, streams, subjects
from runtime import bus
from runtime.embedded import NatsServer


async def bare(base: str, urls: int, concurrency: int) -> float:
    """Requests per second of a plain aiohttp loop fetching the same URLs."""
    slots = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            async with slots, session.get(f"{base}/healthy?u={i}") as r:
                body = await r.read()
                assert r.status == 200 and b"fine" in body

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(urls)))
        return urls / (time.perf_counter() - start)


async def timeline(nats_url: str, due: float) -> dict[str, float]:
    """When, after the due time, the first and last request and completion entered the log,
    and how many requests were sent for another due time than the bench's (held back: the
    scheduler spreads what it finds overdue when it starts)."""
    nc = await bus.connect(nats_url, "bench")
    out: dict[str, float] = {}
    for name, subject in (
        ("requested", subjects.REQUESTED_ALL),
        ("completed", subjects.COMPLETED_ALL),
    ):
        events = [
            codec.decode(m.data, m.subject) async for m in bus.replay(nc.jetstream(), subject)
        ]
        times = [e.at for e in events]
        out[f"last_{name}_after_s"] = round(max(times) - due, 3)
        out[f"first_{name}_after_s"] = round(min(times) - due, 3)
        if name == "requested":
            out["requests_for_another_due_time"] = sum(
                1 for e in events if abs(getattr(e, "due", due) - due) > 0.001
            )
    await nc.close()
    return out


async def ready(nats_url: str, agents: int, procs: list[Proc]) -> None:
    """Wait until every agent has said it is alive in the log and the projector has read the
    whole log so far: the due time is set only after that."""
    nc = await bus.connect(nats_url, "bench-ready")
    js = nc.jetstream()
    deadline = time.monotonic() + 120
    try:
        while True:
            for p in procs:
                if p.proc.poll() is not None:
                    raise SystemExit(f"a service exited with {p.proc.returncode} while starting")
            alive = {m.subject async for m in bus.replay(js, subjects.HEARTBEAT_ALL, True)}
            try:
                info = await js.consumer_info(streams.EVENTS, streams.PROJECTOR)
                caught_up = info.num_pending == 0 and info.num_ack_pending == 0
            except Exception:
                caught_up = False
            if len(alive) >= agents and caught_up:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"services not ready after 120 s: {len(alive)} agents alive")
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def nats_counts(server: NatsServer) -> dict[str, float]:
    """What the NATS server has handled so far: messages and bytes in and out (clients'
    publishes and acks, and what it delivers), and its JetStream API calls."""
    port = server.extra_args[server.extra_args.index("-m") + 1]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/varz") as r:
            varz = await r.json()
        async with session.get(f"http://127.0.0.1:{port}/jsz") as r:
            jsz = await r.json()
    return {
        "in_msgs": varz["in_msgs"],
        "out_msgs": varz["out_msgs"],
        "in_bytes": varz["in_bytes"],
        "out_bytes": varz["out_bytes"],
        "js_api_calls": jsz.get("api", {}).get("total", 0),
        "stored_msgs": jsz.get("messages", 0),
        "stored_bytes": jsz.get("bytes", 0),
    }


def cpu_by_role(roles: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) each role's processes and their children have used so far:
    PostgreSQL's backends are children of its postmaster."""
    out: dict[str, float] = {}
    for role, pids in roles.items():
        total = 0.0
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                top = psutil.Process(pid)
                for ps in [top, *top.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        t = ps.cpu_times()
                        total += t.user + t.system
        out[role] = total
    return out


async def drain(base: str, urls: int, agents: int, concurrency: int, lead: float) -> dict:
    """Tocsin's whole pipeline over ``urls`` URLs of the target at ``base``, all due at once, in
    servers of its own; what it measured (``seconds`` from the due time to the last row)."""
    tasks = urls * 2
    with servers() as (nats_server, pg, work):
        async with web_following_nothing(nats_server.url):  # as a deployed web would
            procs: list[Proc] = []
            try:
                config = write_config(work / "tocsin.yaml", base, urls, "1h")
                nurl = nats_server.url
                # The configuration in force first; then agents and projector, ready before any
                # due time is set; then every group due at one instant and the scheduler.
                service(
                    work, "apply", "config", "apply", str(config), "--nats-url", nurl
                ).proc.wait()
                procs.append(
                    service(
                        work, "projector", "projector", "--nats-url", nurl, "--database-url", pg.url
                    )
                )
                procs += [
                    service(
                        work,
                        f"agent{i}",
                        "agent",
                        "--nats-url",
                        nurl,
                        "--name",
                        f"a{i}",
                        "--concurrency",
                        str(concurrency),
                    )
                    for i in range(agents)
                ]
                await ready(nurl, agents, procs)
                due = time.time() + lead
                await all_due_at(nurl, config, due)
                procs.append(
                    service(
                        work, "scheduler", "scheduler", "--nats-url", nurl, "--config", str(config)
                    )
                )
                roles = {
                    "scheduler": [procs[-1].pid],
                    "agent": [p.pid for p in procs[1:-1]],
                    "projector": [procs[0].pid],
                    "nats": [nats_server.proc.pid] if nats_server.proc else [],
                    "postgresql": [pg.proc.pid] if pg.proc else [],
                }
                await asyncio.sleep(max(0.0, due - time.time()))
                at_due = cpu_by_role(roles)
                counted_at_due = await nats_counts(nats_server)
                last, n = time.time(), 0
                async with pg_connection(pg.url) as polling:
                    while n < tasks:
                        await asyncio.sleep(0.05)
                        n = await count_results(polling)
                        if time.time() - last > 5:
                            print(f"  {n:,}/{tasks:,} results", file=sys.stderr)
                            last = time.time()
                seconds = time.time() - due
                used = cpu_by_role(roles)
                counted = await nats_counts(nats_server)
                phases = await timeline(nurl, due)
            finally:
                for p in procs:
                    p.stop()
    # A request is late when the scheduler held it back, not when a round of 10,000 takes
    # this machine most of a second to publish (``last_requested_after_s`` says how long).
    first = phases["first_requested_after_s"]
    if not 0 <= first <= 1.0 or phases["requests_for_another_due_time"]:
        raise SystemExit(
            f"the requests did not go out at the due time (the first {first:+.3f} s after "
            f"it, {phases['requests_for_another_due_time']:,.0f} sent for a later one): the "
            f"scheduler was not ready {lead:g} s after its start on this machine and spread "
            f"what it found overdue; the figure would not measure a drain. Run again with a "
            f"larger --lead."
        )
    return {
        "checks_per_s": round(tasks / seconds, 1),
        "http_requests_per_s": round(urls / seconds, 1),
        "tasks": tasks,
        "urls": urls,
        "seconds": round(seconds, 3),
        # Where the pipeline's CPU goes, per HTTP request, from the due time to the last row.
        "cpu_ms_per_request": {
            role: round((used[role] - at_due[role]) / urls * 1000, 3) for role in used
        },
        # What NATS handled per HTTP request over the same span.
        "nats_per_request": {k: round((counted[k] - counted_at_due[k]) / urls, 2) for k in counted},
        **phases,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=12000, help="URLs, two checks each")
    ap.add_argument("--agents", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=500, help="checks at once per agent")
    ap.add_argument(
        "--lead",
        type=float,
        default=20.0,
        help="seconds between the scheduler's start and the due time, for it to take the "
        "lease and restore its plan (the run fails if the first request goes out later than "
        "1 s after the due time, or any is sent for a later due time)",
    )
    args = ap.parse_args()
    with scratch("tocsin-bench-target-") as work:
        web, base = target(work)
        try:
            await wait_port_http(base)
            measured = await drain(base, args.urls, args.agents, args.concurrency, args.lead)
            bare_rate = max([await bare(base, args.urls, args.concurrency) for _ in range(3)])
        finally:
            web.stop()
    result = {
        "bench": "drain",
        "ratio_to_bare_loop": round(measured["http_requests_per_s"] / bare_rate, 3),
        "bare_requests_per_s": round(bare_rate, 1),
        **measured,
        "targets": {
            "ratio_to_bare_loop": target_of(
                round(measured["http_requests_per_s"] / bare_rate, 3), at_least=0.6
            )
        },
    }
    print(
        f"{result['tasks']:,} checks ({args.urls:,} HTTP requests) due at once: read model "
        f"complete after {result['seconds']:.2f}s = {result['checks_per_s']:,.0f} checks/s "
        f"({result['http_requests_per_s']:,.0f} requests/s); bare aiohttp loop: "
        f"{bare_rate:,.0f} requests/s (the pipeline at {result['ratio_to_bare_loop']:.0%} of it)"
    )
    print(
        "CPU ms per request: "
        + ", ".join(f"{role} {ms:.3f}" for role, ms in result["cpu_ms_per_request"].items())
    )
    print(
        "NATS per request: "
        + ", ".join(f"{k} {v:g}" for k, v in result["nats_per_request"].items())
    )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
