"""The agent alone against a bare aiohttp loop: how close a request through the agent comes
to the wire, and what it costs in CPU.

    .venv/bin/python bench/agent.py [--requests 5000] [--rounds 3] [--compare DIR]

One NATS (no PostgreSQL: nothing here reads the read model) and the loopback demo target,
each a process of its own. Each round runs, one after the other, a bare aiohttp loop over
``--requests`` URLs (same concurrency as the agent, reading and checking each body) and a
fresh agent process that drains as many check requests (one URL, two checks each) published
once it is ready. The agent's rate is its requests over the span from its first request's
start to its last completion; its CPU is the process's user + system time over the drain
(from /proc), given per 1,000 checks; the target's CPU per request during the bare loop is
given too (the bare loop's rate is bounded by the slower of the two). ``--compare DIR`` runs,
in the same rounds, the agent of another source tree (an export of an earlier commit:
``git archive REV | tar -x -C DIR``), so a change is measured against its base on the same
machine at the same time; ``--agents N`` runs N agent processes per round (the agents of a
location share one work queue: how an agent scales past one core), ``--processes N`` this
tree's agents with N worker processes each (``tocsin agent --processes``; the compared tree's
agents keep one; CPU is then the whole process tree's). The last
line is one JSON object; ``agent_vs_bare`` is the best agent rate over the best bare rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec
import nats

from bench.common import (
    ROOT,
    Proc,
    scratch,
    target,
    target_of,
    wait_port_http,
    web_following_nothing,
)
from bench.drain import bare
from checks.request import message_id
from events import codec, streams, subjects
from events.types import CheckRequested, CheckSpec
from runtime.embedded import NatsServer
from runtime.pubacks import Publisher

CHECKS_PER_REQUEST = 2


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its children (an agent's worker processes) so far."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        children.append(int(entry))
            except OSError:
                continue
    return cpu_seconds(pid) + sum(cpu_seconds(c) for c in children)


def requests(base: str, n: int, tag: str) -> list[tuple[str, bytes, str]]:
    """``n`` check requests as the scheduler publishes them, each its own URL and group."""
    now = time.time()
    out: list[tuple[str, bytes, str]] = []
    for i in range(n):
        group = f"{tag}g{i}"
        req = CheckRequested(
            at=now,
            request=f"{group}.default.{int(now * 1000)}",
            group=group,
            location="default",
            url=f"{base}/healthy?u={i}",
            method="GET",
            ip_version=4,
            timeout=10,
            due=now,
            checks=[
                CheckSpec(f"{group}a", "status-is", 200),
                CheckSpec(f"{group}b", "body-contains", "fine"),
            ],
        )
        out.append(
            (subjects.requested("default", group), codec.encode(req), message_id(req.request))
        )
    return out


async def publish(nc: nats.NATS, items: list[tuple[str, bytes, str]], window: int = 1000) -> None:
    """Publish as the scheduler does (``runtime/pubacks.py``), ``window`` acknowledgements
    awaited at a time: nats-py's ``publish_async`` cost the bench, in the agent's round and on
    the cores the agent runs on, as much CPU as NATS itself."""
    publisher = await Publisher(nc).start()
    try:
        for start in range(0, len(items), window):
            batch = publisher.batch()
            for subject, data, msg_id in items[start : start + window]:
                await batch.publish(subject, data, msg_id)
            await batch.acked(nc.jetstream(), 30)
    finally:
        await publisher.close()


class _Outcome(msgspec.Struct):
    status: str


class _Seen(msgspec.Struct):
    """What the bench reads of a completion, without the contract's checks (the agent's
    readers make them): the whole decode of each was the bench's own CPU in the agent's
    round, on the cores the agent runs on."""

    started: float
    at: float
    outcomes: list[_Outcome]


_seen = msgspec.json.Decoder(_Seen)


async def agent_round(
    nats_url: str,
    base: str,
    n: int,
    concurrency: int,
    tag: str,
    root: Path,
    work: Path,
    agents: int = 1,
    profile: str | None = None,
    processes: int = 1,
    beside: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Fresh agents (from the tree at ``root``; ``agents`` processes sharing the work queue)
    draining ``n`` requests published at once; ``profile``: where to write py-spy's record of
    the first (``.svg`` a flame graph, else the collapsed stacks as text)."""
    nc = await nats.connect(nats_url)
    beat, done = asyncio.Event(), asyncio.Event()
    alive: set[str] = set()
    spans: list[tuple[float, float]] = []

    async def on_beat(msg: Any) -> None:
        alive.add(msg.subject)
        if len(alive) >= agents:
            beat.set()

    async def on_completed(msg: Any) -> None:
        event = _seen.decode(msg.data)
        assert [o.status for o in event.outcomes] == ["success"] * CHECKS_PER_REQUEST, msg.data
        spans.append((event.started, event.at))
        if len(spans) >= n:
            done.set()

    await nc.subscribe(subjects.HEARTBEAT_ALL, cb=on_beat)
    await nc.subscribe(subjects.COMPLETED_ALL, cb=on_completed)
    async with web_following_nothing(nats_url):  # as a deployed web would
        procs = []
        for k in range(agents):
            args = ["services.cli", "agent", "--nats-url", nats_url, "--name", f"a{tag}-{k}"]
            args += ["--host-interval", "0", "--concurrency", str(concurrency)]
            if processes > 1:
                args += ["--processes", str(processes)]
            procs.append(Proc(args, work / f"{tag}-{k}.log", root))
        spy: subprocess.Popen[bytes] | None = None
        try:
            await asyncio.wait_for(beat.wait(), 60)
            await asyncio.sleep(1)  # its first heartbeat goes out before it binds the work queue
            if profile:
                fmt = "flamegraph" if profile.endswith(".svg") else "raw"
                py_spy = str(Path(sys.executable).parent / "py-spy")
                spy = subprocess.Popen(  # noqa: ASYNC220 - it ends with the agent
                    [
                        py_spy,
                        "record",
                        "-p",
                        str(procs[0].pid),
                        "-o",
                        profile,
                        "-f",
                        fmt,
                        "-r",
                        "200",
                    ]
                )
            cpu = sum(tree_cpu_seconds(p.pid) for p in procs)
            others = {name: cpu_seconds(pid) for name, pid in (beside or {}).items()}
            own = time.process_time()
            await publish(nc, requests(base, n, tag))
            await asyncio.wait_for(done.wait(), 300)
            cpu = sum(tree_cpu_seconds(p.pid) for p in procs) - cpu
            others = {name: cpu_seconds(pid) - others[name] for name, pid in (beside or {}).items()}
            others["bench"] = time.process_time() - own
        finally:
            for p in procs:
                p.stop()
            await nc.close()
    if spy is not None:
        spy.wait(30)
    seconds = max(at for _, at in spans) - min(started for started, _ in spans)
    return {
        "requests_per_s": n / seconds,
        "cpu_s_per_1000_checks": cpu * 1000 / (n * CHECKS_PER_REQUEST),
        # What shares the cores with the agent in its round, and not with the bare loop in
        # its own (the target aside): NATS, and the bench publishing and reading the events.
        "beside_cpu_s_per_1000_checks": {
            name: round(spent * 1000 / (n * CHECKS_PER_REQUEST), 4)
            for name, spent in others.items()
        },
    }


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["requests_per_s"] for r in rounds]
    cpus = [r["cpu_s_per_1000_checks"] for r in rounds]
    beside = [r["beside_cpu_s_per_1000_checks"] for r in rounds]
    return {
        "beside_cpu_s_per_1000_checks": {
            name: round(statistics.median(b[name] for b in beside), 4) for name in beside[0]
        },
        "requests_per_s": round(max(rates), 1),
        "requests_per_s_rounds": [round(r, 1) for r in rates],
        "cpu_s_per_1000_checks": round(statistics.median(cpus), 4),
        "cpu_s_per_1000_checks_rounds": [round(c, 4) for c in cpus],
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=5000, help="HTTP requests per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=500, help="checks at once per agent")
    ap.add_argument("--agents", type=int, default=1, help="agent processes per round")
    ap.add_argument("--processes", type=int, default=1, help="worker processes per agent")
    ap.add_argument("--compare", type=Path, help="another source tree whose agent to measure")
    ap.add_argument(
        "--profile", help="py-spy record of the last round's agent (.svg: a flame graph, else text)"
    )
    args = ap.parse_args()
    with scratch("tocsin-bench-agent-") as work:
        nats_server = NatsServer(work / "nats").start()
        web, base = target(work)
        trees = {"agent": ROOT, **({"compare": args.compare.resolve()} if args.compare else {})}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        bare_rates, bare_cpu, target_cpu = [], [], []
        try:
            await wait_port_http(base)
            nc = await nats.connect(nats_server.url)
            await streams.ensure(nc.jetstream(), ["default"])
            await nc.close()
            for r in range(args.rounds):
                cpu, served = time.process_time(), cpu_seconds(web.pid)
                bare_rates.append(await bare(base, args.requests, args.concurrency))
                bare_cpu.append((time.process_time() - cpu) * 1000 / args.requests)
                target_cpu.append((cpu_seconds(web.pid) - served) * 1000 / args.requests)
                order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
                for name, root in order:
                    last = r == args.rounds - 1 and name == "agent"
                    one = await agent_round(
                        nats_server.url,
                        base,
                        args.requests,
                        args.concurrency,
                        f"{name}{r}",
                        root,
                        work,
                        args.agents,
                        args.profile if last else None,
                        args.processes if name == "agent" else 1,
                        (
                            {"nats": nats_server.proc.pid, "target": web.pid}
                            if nats_server.proc
                            else None
                        ),
                    )
                    runs[name].append(one)
                    print(f"round {r + 1} {name}: {json.dumps(one)}", file=sys.stderr)
                print(f"round {r + 1} bare: {bare_rates[-1]:.0f} requests/s", file=sys.stderr)
        finally:
            web.stop()
            nats_server.stop()
    best_bare = max(bare_rates)
    result: dict[str, Any] = {
        "bench": "agent",
        "agent_vs_bare": round(max(r["requests_per_s"] for r in runs["agent"]) / best_bare, 3),
        "targets": {
            "agent_vs_bare": target_of(
                round(max(r["requests_per_s"] for r in runs["agent"]) / best_bare, 3),
                at_least=0.85,
            )
        },
        "requests": args.requests,
        "agents": args.agents,
        "processes": args.processes,
        "rounds": args.rounds,
        "bare_requests_per_s": round(best_bare, 1),
        "bare_requests_per_s_rounds": [round(b, 1) for b in bare_rates],
        "bare_cpu_s_per_1000_requests": round(statistics.median(bare_cpu), 4),
        # The target answers in a process of its own: the bare loop's rate is bounded by it too.
        "target_cpu_s_per_1000_requests": round(statistics.median(target_cpu), 4),
        "agent": summary(runs["agent"]),
    }
    # CPU per HTTP request, the agent's over the bare loop's: the overhead, whatever the load.
    result["agent_cpu_vs_bare"] = round(
        result["agent"]["cpu_s_per_1000_checks"]
        * CHECKS_PER_REQUEST
        / result["bare_cpu_s_per_1000_requests"],
        2,
    )
    if args.compare:
        base_run, new = summary(runs["compare"]), result["agent"]
        result["compare"] = {"tree": str(args.compare), **base_run}
        result["compare_vs_bare"] = round(base_run["requests_per_s"] / best_bare, 3)
        result["cpu_agent_vs_compare"] = round(
            new["cpu_s_per_1000_checks"] / base_run["cpu_s_per_1000_checks"], 3
        )
    agent = result["agent"]
    print(
        f"{args.requests:,} requests ({args.requests * CHECKS_PER_REQUEST:,} checks) x "
        f"{args.rounds}: agent {agent['requests_per_s']:,.0f} requests/s, "
        f"{agent['cpu_s_per_1000_checks']:.3f} CPU s per 1,000 checks; bare aiohttp loop "
        f"{best_bare:,.0f} requests/s (the agent at {result['agent_vs_bare']:.0%} of it)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
