"""What every fault test shares: services as real processes, load, and the invariant.

The invariant, checked at the end of each test once everything is quiet:

- every check request in the log is either completed exactly once in the read
  model (one result row per task of the request) or recorded as dead-lettered;
- the live read model equals the one a full ``rebuild`` produces from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import nats

from events import codec, streams, subjects
from events.types import CheckCompleted, CheckRequested
from readmodel import SCHEMA
from runtime import bus
from services.projector.rebuild import checksum, rebuild
from tests.helpers import site_config, wait_for

ROOT = Path(__file__).resolve().parents[2]


def config_body(url: str, paths: list[str], frequency: str = "2s", timeout: str = "5s") -> str:
    """One group per path, two checks each (so a completion carries several outcomes)."""
    checks = ["status-is: 200", "body-contains: ok"]
    return site_config(url, {p: checks for p in paths}, frequency, timeout)


class Service:
    """``python -m services.cli <args>`` as a child process of its own, killable with -9."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        module: str = "services.cli",
    ) -> None:
        self.args, self.log, self.module = args, log, module
        self.env = {**os.environ, "TOCSIN_LOG_LEVEL": "warning", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> Service:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait()

    async def wait(self, within: float) -> int:
        assert self.proc is not None
        proc = self.proc
        return await asyncio.wait_for(asyncio.to_thread(proc.wait), within)

    async def stop(self, within: float = 30) -> int:
        if not self.alive:
            assert self.proc is not None
            return self.proc.returncode
        self.signal(signal.SIGTERM)
        return await self.wait(within)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Services:
    """The processes of one test, all stopped at its end whatever happens."""

    nats_url: str
    database_url: str
    config: Path
    logs: Path
    started: list[Service] = field(default_factory=list)

    def _start(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        module: str = "services.cli",
    ) -> Service:
        s = Service(args, self.logs / f"{name}-{len(self.started)}.log", env, module)
        self.started.append(s)
        return s

    def scheduler(
        self, ack_wait: float = 3.0, max_deliver: int = 5, replicas: int = 1, shards: int = 1
    ) -> Service:
        # Info level: the log says which scheduler holds the lease (and which shards).
        return self._start(
            "scheduler",
            [
                "--log-level",
                "info",
                "scheduler",
                "--nats-url",
                self.nats_url,
                "--config",
                str(self.config),
                "--ack-wait",
                str(ack_wait),
                "--max-deliver",
                str(max_deliver),
                "--replicas",
                str(replicas),
                "--shards",
                str(shards),
            ],
        )

    def agent(self, name: str, concurrency: int = 200) -> Service:
        return self._start(
            f"agent-{name}",
            [
                "agent",
                "--nats-url",
                self.nats_url,
                "--name",
                name,
                "--concurrency",
                str(concurrency),
            ],
        )

    def projector(self, crash_chance: float | None = None) -> Service:
        if crash_chance is not None:
            # A projector that kills itself between commit and ack (tests/faults/crashing.py).
            return self._start(
                "projector",
                [self.nats_url, self.database_url, str(crash_chance)],
                module="tests.faults.crashing",
            )
        return self._start(
            "projector",
            ["projector", "--nats-url", self.nats_url, "--database-url", self.database_url],
        )

    async def close(self) -> None:
        for s in self.started:
            if s.alive:
                s.signal(signal.SIGTERM)
        for s in self.started:
            if s.alive:
                try:
                    await s.wait(20)
                except TimeoutError:
                    s.kill()


async def js_call(url: str, fn: Any) -> Any:
    nc = await nats.connect(servers=url.split(","))
    try:
        return await fn(nc.jetstream())
    finally:
        await nc.close()


async def work_pending(url: str, location: str = "default") -> int:
    """Requests of a location not yet acked (waiting or held by an agent)."""

    async def get(js: Any) -> int:
        info = await js.consumer_info(streams.WORK, streams.agent_consumer_name(location))
        return int(info.num_pending + info.num_ack_pending)

    return int(await js_call(url, get))


async def requests_in_log(url: str) -> dict[str, CheckRequested]:
    nc = await bus.connect(url, "fault-test")
    out: dict[str, CheckRequested] = {}
    try:
        async for msg in bus.replay(nc.jetstream(), subjects.REQUESTED_ALL):
            with contextlib.suppress(codec.DecodeError):
                ev = codec.decode(msg.data, msg.subject)
                if isinstance(ev, CheckRequested):
                    assert ev.request not in out, f"request {ev.request} twice in the log"
                    out[ev.request] = ev
    finally:
        await nc.close()
    return out


async def last_seq(url: str) -> int:
    async def get(js: Any) -> int:
        return int((await js.stream_info(streams.EVENTS)).state.last_seq)

    return int(await js_call(url, get))


async def projected_seq(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(f"SELECT seq FROM {SCHEMA}.position") or 0)
    finally:
        await conn.close()


async def wait_projected(nats_url: str, database_url: str, within: float = 60) -> None:
    async def caught_up() -> bool:
        return await projected_seq(database_url) >= await last_seq(nats_url)

    await wait_for(caught_up, within, what="projector caught up with the log")


async def wait_drained(nats_url: str, within: float = 60) -> None:
    async def drained() -> bool:
        return await work_pending(nats_url) == 0

    await wait_for(drained, within, what="every request acked by an agent")


_REQUEST_IN_EXCERPT = re.compile(r'"request":"([^"]+)"')


async def check_invariant(nats_url: str, database_url: str) -> dict[str, int]:
    """Every request completed exactly once or dead-lettered; live == rebuilt read model.

    Call once no service publishes any more (the projector caught up).
    """
    requests = await requests_in_log(nats_url)
    assert requests, "the test produced no check request at all"
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        rows = await conn.fetch(
            "SELECT request, task_id, count(*) AS n FROM results GROUP BY request, task_id"
        )
        dead = await conn.fetch("SELECT excerpt FROM dead_letters WHERE kind = 'max_deliver'")
        before = await checksum(conn)
    finally:
        await conn.close()
    counts = {(r["request"], r["task_id"]): r["n"] for r in rows}
    dead_requests = {m.group(1) for r in dead if (m := _REQUEST_IN_EXCERPT.search(r["excerpt"]))}
    twice = {k: n for k, n in counts.items() if n > 1}
    assert not twice, f"results recorded more than once: {list(twice.items())[:5]}"
    unknown = {req for req, _ in counts} - requests.keys()
    assert not unknown, f"results of requests the log does not have: {sorted(unknown)[:5]}"
    missing = []
    for req, ev in requests.items():
        done = {spec.task for spec in ev.checks if (req, spec.task) in counts}
        if req in dead_requests:
            continue
        if len(done) != len(ev.checks):
            missing.append(req)
    assert not missing, (
        f"{len(missing)} of {len(requests)} requests neither completed nor "
        f"dead-lettered: {missing[:5]}"
    )
    await completions_accounted(nats_url, database_url)
    await rebuild(nats_url, database_url, progress=lambda *a: None)
    conn = await asyncpg.connect(database_url)
    try:
        after = await checksum(conn)
    finally:
        await conn.close()
    assert after == before, f"read model differs from its rebuild: {before} != {after}"
    return {"requests": len(requests), "results": len(counts), "dead": len(dead_requests)}


async def completions_accounted(nats_url: str, database_url: str) -> int:
    """Counted against the log: every completion is in ``results`` (one row per task it
    answers, each once) or a dead letter of the projector, never both, never neither."""
    nc = await bus.connect(nats_url, "fault-test")
    logged: dict[int, int | None] = {}  # seq → tasks it answers (None: not an event)
    try:
        async for msg in bus.replay(nc.jetstream(), subjects.COMPLETED_ALL):
            try:
                ev = codec.decode(msg.data, msg.subject)
            except codec.DecodeError:
                ev = None
            tasks = {o.task for o in ev.outcomes} if isinstance(ev, CheckCompleted) else None
            logged[msg.metadata.sequence.stream] = None if tasks is None else len(tasks)
    finally:
        await nc.close()
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        rows = await conn.fetch(
            "SELECT seq, count(*) AS n FROM results WHERE seq = ANY($1::bigint[]) GROUP BY seq",
            list(logged),
        )
        dead = await conn.fetch(
            "SELECT source_seq, count(*) AS n FROM dead_letters WHERE consumer = 'projector' "
            "AND seq = source_seq AND source_seq = ANY($1::bigint[]) GROUP BY source_seq",
            list(logged),
        )
    finally:
        await conn.close()
    stored = {r["seq"]: r["n"] for r in rows}
    refused = {r["source_seq"]: r["n"] for r in dead}
    wrong = {
        seq: (n, stored.get(seq), refused.get(seq))
        for seq, n in logged.items()
        if (stored.get(seq, 0), refused.get(seq, 0))
        not in ([(0, 1)] if n is None else [(n, 0), (0, 1)])
    }
    assert not wrong, f"completions (seq: tasks, rows, dead letters) not accounted: {wrong}"
    return len(logged)


async def quiesce_and_check(
    svc: Services, scheduler: list[Service], agents: list[Service], within: float = 90
) -> dict[str, int]:
    """Stop dispatching, let the agents finish, stop them, let the projector catch up, check."""
    for s in scheduler:
        await s.stop()
    await wait_drained(svc.nats_url, within)
    for a in agents:
        await a.stop()
    await wait_projected(svc.nats_url, svc.database_url, within)
    return await check_invariant(svc.nats_url, svc.database_url)


async def assert_no_duplicate_requests(url: str, frequency: float) -> dict[str, list[float]]:
    """No two requests of one group and location for (nearly) the same run: two dispatchers
    at work. Returns each group's due times, sorted."""
    dues: dict[tuple[str, str], list[float]] = {}
    for ev in (await requests_in_log(url)).values():
        dues.setdefault((ev.group, ev.location), []).append(ev.due)
    close = []
    for key, times in dues.items():
        times.sort()
        close += [(key, a, b) for a, b in itertools.pairwise(times) if b - a < frequency / 2]
    assert not close, f"duplicate requests: {close[:5]}"
    return {group: times for (group, _), times in dues.items()}


async def results_by_agent(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        rows = await conn.fetch(
            "SELECT agent, count(DISTINCT request) AS n FROM results GROUP BY agent"
        )
    finally:
        await conn.close()
    return {r["agent"]: r["n"] for r in rows}


async def count(database_url: str, query: str, *args: Any) -> int:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        return int(await conn.fetchval(query, *args) or 0)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()
