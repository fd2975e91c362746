"""Tocsin against its peers in one run: the same URLs of the same target, drained by Argos
0.10.3 (its server, its agents, a PostgreSQL database of its own), by Prometheus's
blackbox_exporter (a bare loop over ``/probe``), by Tocsin's whole pipeline, and by a bare
aiohttp loop, alternating the systems round after round.

    .venv/bin/python bench/peers.py [--urls 3000] [--rounds 2]

Each URL carries two checks (status 200, body contains "fine"): two Argos tasks, two Tocsin
tasks, one blackbox probe with ``valid_status_codes`` and ``fail_if_body_not_matches_regexp``.
Rates are checks per second (two per HTTP request). Needs ``.venv-argos`` (built on first use
from tests/argos/requirements.txt) and Debian's ``prometheus-blackbox-exporter``. The last
line is one JSON object with ``tocsin_vs_argos``, ``tocsin_vs_blackbox`` and each system's
ratio to the bare loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
from asyncio.subprocess import PIPE, STDOUT
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg

from bench.common import scratch, servers, target, target_of, wait_port_http, write_config
from bench.drain import bare, drain
from runtime.embedded import free_port
from tests.argos_support import argos_bin

TOKEN = "bench-argos-token"
BLACKBOX = "prometheus-blackbox-exporter"


async def argos(base: str, urls: int, agents: int, max_tasks: int, work: Path) -> float:
    """Checks per second of Argos 0.10.3: from its agents' start to every task's first result."""
    bin_dir = argos_bin()
    tasks = urls * 2
    with servers(str(work / "argos-servers")) as (_, pg, _):
        db = pg.url.rsplit("/", 1)[0] + "/argos"
        conn = await asyncpg.connect(pg.url)
        await conn.execute("CREATE DATABASE argos")
        await conn.close()
        config = write_config(work / "argos.yaml", base, urls, "60m")
        text = config.read_text().replace(
            "general:\n",
            f'general:\n  db: {{url: "{db}"}}\n  cookie_secret: "bench"\n'
            "  alerts: {ok: [local], warning: [local], critical: [local], unknown: [local], "
            "no_agent: [local]}\n",
            1,
        )
        config.write_text(
            text + f'service: {{secrets: ["{TOKEN}"]}}\nssl: {{thresholds: [{{"1d": critical}}]}}\n'
            "recurring_tasks: {max_results_age: 1d, max_lock_seconds: 100, "
            "time_without_agent: 5}\n"
        )
        argos_cmd = str(bin_dir / "argos")
        for step in ("migrate", "reload-config"):
            setup = await asyncio.create_subprocess_exec(
                argos_cmd, "server", step, "--config", str(config), stdout=PIPE, stderr=STDOUT
            )
            out, _ = await setup.communicate()
            if setup.returncode:
                raise SystemExit(f"argos server {step} failed:\n{out.decode()}")
        port = free_port()
        log = (work / "argos.log").open("w")
        server = await asyncio.create_subprocess_exec(
            argos_cmd, "server", "start", "--config", str(config), "--port", str(port),
            stdout=log, stderr=log,
        )  # fmt: skip
        procs = [server]
        try:
            await _until_up(f"http://127.0.0.1:{port}/login")
            start = time.perf_counter()
            for i in range(agents):
                agent = await asyncio.create_subprocess_exec(
                    argos_cmd, "agent", f"http://127.0.0.1:{port}", TOKEN,
                    "--max-tasks", str(max_tasks), "--wait-time", "1", "--name", f"bench-{i}",
                    stdout=log, stderr=log,
                )  # fmt: skip
                procs.append(agent)
            conn = await asyncpg.connect(db)
            try:
                done = 0
                while done < tasks:
                    await asyncio.sleep(0.1)
                    done = await conn.fetchval("SELECT count(DISTINCT task_id) FROM results")
                    if any(p.returncode is not None for p in procs):
                        raise SystemExit(f"Argos exited early; see {work / 'argos.log'}")
            finally:
                await conn.close()
            return tasks / (time.perf_counter() - start)
        finally:
            for p in procs:
                p.terminate()
                await asyncio.wait_for(p.wait(), 20)


async def blackbox(base: str, urls: int, concurrency: int, work: Path) -> float:
    """Checks per second of blackbox_exporter: a bare loop over /probe, two checks a probe."""
    config = work / "blackbox.yml"
    config.write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 10s\n    http:\n"
        "      valid_status_codes: [200]\n      preferred_ip_protocol: ip4\n"
        '      fail_if_body_not_matches_regexp: ["fine"]\n'
    )
    port = free_port()
    log = (work / "blackbox.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        BLACKBOX,
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=log,
        stderr=log,
    )
    try:
        await _until_up(f"http://127.0.0.1:{port}/metrics")
        slots = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        probe = f"http://127.0.0.1:{port}/probe"
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(i: int) -> None:
                params = {"module": "http_2xx", "target": f"{base}/healthy?u={i}"}
                async with slots, session.get(probe, params=params) as r:
                    body = await r.text()
                    if "\nprobe_success 1" not in body:
                        raise SystemExit(f"blackbox probe {i} failed:\n{body[-500:]}")

            start = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(urls)))
            return 2 * urls / (time.perf_counter() - start)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)


async def _until_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url) as r:
                    await r.read()
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer in {timeout:g} s")
            await asyncio.sleep(0.2)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=3000, help="URLs, two checks each")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of A B A B")
    ap.add_argument("--concurrency", type=int, default=500)
    ap.add_argument("--argos-agents", type=int, default=2)
    ap.add_argument("--lead", type=float, default=20.0, help="see bench/drain.py")
    args = ap.parse_args()
    if shutil.which(BLACKBOX) is None:
        raise SystemExit(f"{BLACKBOX} not found: apt-get install {BLACKBOX}")
    runs: dict[str, list[float]] = {"bare": [], "argos": [], "blackbox": [], "tocsin": []}
    with scratch("tocsin-bench-peers-") as work:
        web, base = target(work)
        try:
            await wait_port_http(base)
            for r in range(args.rounds):
                rnd = work / f"round{r}"
                rnd.mkdir()
                runs["bare"].append(2 * await bare(base, args.urls, args.concurrency))
                runs["argos"].append(
                    await argos(base, args.urls, args.argos_agents, args.concurrency, rnd)
                )
                runs["blackbox"].append(await blackbox(base, args.urls, args.concurrency, rnd))
                measured = await drain(base, args.urls, 1, args.concurrency, args.lead)
                runs["tocsin"].append(measured["checks_per_s"])
                print(
                    f"round {r + 1}: "
                    + ", ".join(f"{k} {v[-1]:,.0f} checks/s" for k, v in runs.items()),
                    file=sys.stderr,
                )
        finally:
            web.stop()
    best = {k: max(v) for k, v in runs.items()}
    for name, rates in runs.items():
        print(
            f"{name:9} best {best[name]:8,.0f} checks/s  median {statistics.median(rates):8,.0f}"
            f"  ({best[name] / best['bare']:.0%} of the bare loop)"
        )
    print(
        json.dumps(
            {
                "bench": "peers",
                "urls": args.urls,
                "checks": 2 * args.urls,
                "tocsin_vs_argos": round(best["tocsin"] / best["argos"], 2),
                "tocsin_vs_blackbox": round(best["tocsin"] / best["blackbox"], 3),
                "targets": {
                    "tocsin_vs_argos": target_of(
                        round(best["tocsin"] / best["argos"], 2), at_least=25
                    )
                },
                **{f"{k}_vs_bare_loop": round(best[k] / best["bare"], 3) for k in best},
                **{f"{k}_checks_per_s": [round(x, 1) for x in v] for k, v in runs.items()},
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
