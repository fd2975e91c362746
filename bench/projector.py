"""Projector benchmark: fold rate over pre-published events, a plain COPY, a full rebuild.

    .venv/bin/python bench/projector.py [--events 1000000]

The log is filled first (a configuration of 6,000 tasks in 3,000 groups, then alternating
``check.completed`` with two outcomes and ``task.judged`` with two judgements, the shape of
real traffic). Then, each timed on its own:

1. the projector (``tocsin projector``, a process) folds the whole log from sequence 1;
2. a plain asyncpg COPY of the same result rows into an identical empty table: the
   floor of what writing those rows costs in this PostgreSQL;
3. ``rebuild``: the whole log replayed into fresh tables and swapped in.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats

from bench.common import pg, publish_all, servers, service, write_config
from configuration import config as configuration
from configuration.inforce import apply_config
from events import codec, streams, subjects
from events.types import (
    CheckCompleted,
    CheckOutcome,
    Judgement,
    Observation,
    TaskJudged,
)
from readmodel import ensure_schema
from services.projector.fold import RESULT_COLUMNS, fold
from services.projector.rebuild import rebuild


def events(cfg: configuration.Config, n: int) -> list[tuple[str, bytes, None]]:
    groups: dict[str, list[str]] = {}
    for t in cfg.tasks.values():
        groups.setdefault(t.group, []).append(t.id)
    order = sorted(groups)
    out: list[tuple[str, bytes, None]] = []
    now = time.time() - n
    for i in range(n // 2):
        g = order[i % len(order)]
        at = now + i
        out.append(
            (
                subjects.completed("a1", "default", g),
                codec.encode(
                    CheckCompleted(
                        at=at,
                        request=f"{g}.default.{i}",
                        group=g,
                        agent="a1",
                        location="default",
                        started=at - 0.01,
                        observation=Observation(status=200, elapsed_ms=3.2, body_bytes=24),
                        outcomes=[CheckOutcome(t, "status-is", "success") for t in groups[g]],
                    )
                ),
                None,
            )
        )
        out.append(
            (
                subjects.judged(g),
                codec.encode(
                    TaskJudged(
                        at=at,
                        group=g,
                        completion=2 * i + 1,
                        next_run=at + 60,
                        judgements=[
                            Judgement(t, "ok" if i % 7 else "critical", "ok", "fine")
                            for t in groups[g]
                        ],
                    )
                ),
                None,
            )
        )
    return out


async def position(url: str) -> int:
    async with pg(url) as conn:
        try:
            return int(await conn.fetchval("SELECT seq FROM tocsin.position"))
        except Exception:
            return 0


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--profile", help="write a py-spy flame graph of the projector here")
    args = ap.parse_args()
    with servers() as (nats_server, server, work):
        config = write_config(work / "tocsin.yaml", "http://127.0.0.1:9", 3000, "1m")
        cfg = configuration.parse(config)
        nc = await nats.connect(nats_server.url, max_outstanding_pings=10)
        js = nc.jetstream()
        await streams.ensure(js, cfg.locations)
        await apply_config(js, cfg, "bench")
        batch = events(cfg, args.events - 2)
        start = time.perf_counter()
        await publish_all(js, batch)
        publish_s = time.perf_counter() - start
        last = (await js.stream_info(streams.EVENTS)).state.last_seq
        await nc.close()
        print(f"published {last:,} events in {publish_s:.1f}s", file=sys.stderr)

        # 1. The projector, from sequence 1.
        start = time.perf_counter()
        proc = service(
            work,
            "projector",
            "projector",
            "--nats-url",
            nats_server.url,
            "--database-url",
            server.url,
        )
        if args.profile:  # where the projector's time goes, as a flame graph (py-spy)
            spy = [str(Path(sys.executable).parent / "py-spy"), "record", "-o", args.profile]
            spy += ["-p", str(proc.pid), "-d", "20", "-r", "50"]
            subprocess.Popen(spy)  # noqa: ASYNC220 - started once, not awaited
        seen = 0
        while seen < last:
            await asyncio.sleep(0.1)
            seen = await position(server.url)
        fold_s = time.perf_counter() - start
        proc.stop()
        print(f"projector folded {last:,} events in {fold_s:.1f}s", file=sys.stderr)

        # 2. COPY of the same result rows into an identical, empty table.
        rows = []
        for i in range(0, len(batch), 1000):
            part = [
                (seq, codec.decode(data, subject))
                for seq, (subject, data, _) in enumerate(batch[i : i + 1000], start=i + 3)
            ]
            rows += fold(part).results  # type: ignore[arg-type]
        async with pg(server.url) as conn:
            await ensure_schema(conn, "copybench")
            start = time.perf_counter()
            for i in range(0, len(rows), 50_000):
                await conn.copy_records_to_table(
                    "results",
                    records=rows[i : i + 50_000],
                    schema_name="copybench",
                    columns=RESULT_COLUMNS,
                )
            copy_s = time.perf_counter() - start
            await conn.execute("DROP SCHEMA copybench CASCADE")
        print(f"COPY of the {len(rows):,} result rows: {copy_s:.1f}s", file=sys.stderr)

        # 3. A full rebuild.
        start = time.perf_counter()
        await rebuild(nats_server.url, server.url, progress=lambda *a: None)
        rebuild_s = time.perf_counter() - start
    result = {
        "events": last,
        "fold_events_per_s": round(last / fold_s),
        "fold_s": round(fold_s, 1),
        "result_rows": len(rows),
        "copy_rows_per_s": round(len(rows) / copy_s),
        "copy_events_per_s": round(last / copy_s),
        "copy_s": round(copy_s, 1),
        "rebuild_s": round(rebuild_s, 1),
        "rebuild_events_per_s": round(last / rebuild_s),
        "publish_events_per_s": round(last / publish_s),
    }
    print(
        f"projector: {last / fold_s:,.0f} events/s; COPY of the same {len(rows):,} result "
        f"rows: {len(rows) / copy_s:,.0f} rows/s; rebuild of {last:,} events: "
        f"{rebuild_s:.1f}s ({last / rebuild_s:,.0f} events/s)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
