"""``tocsin check --config FILE [--json]``: every task of a configuration, once, from here.

No NATS, no PostgreSQL: the same request groups as the scheduler, the same
probe as the agents (checks/probe.py) and the same judgement as the
scheduler (checks/judge.py), so a one-shot run says what the
running system would. Exit code as Nagios: 0 all ok, 1 a warning at worst,
2 anything critical or unknown (and an invalid configuration).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from checks import CATALOGUE, request
from checks.judge import GroupState, judge
from checks.masking import RequestSecrets
from checks.probe import Prober
from configuration import config as configuration
from configuration.redaction import public_url
from events.types import CheckRequested, TaskDef
from runtime import cliopts

RANK = {"ok": 0, "warning": 1, "critical": 2, "unknown": 2}


@dataclass
class Row:
    url: str
    method: str
    ip_version: int
    check: str
    expected: Any
    status: str
    severity: str
    context: str
    http_status: int | None = None
    elapsed_ms: float | None = None
    #: What a target beyond HTTP showed (DNS answers, round trips, certificate, days left).
    facts: dict[str, Any] = field(default_factory=dict)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="run every task of a configuration once, from here (no NATS, no database)",
        description="Run every task of a configuration once from this machine and print the "
        "verdicts. Exit 0 if all are ok, 1 if the worst is a warning, 2 if any is critical or "
        "unknown (Nagios convention). Private CAs: set SSL_CERT_FILE.",
    )
    cliopts.config(p)
    p.add_argument("--json", action="store_true", help="one JSON object per task and line")
    p.add_argument("--concurrency", type=int, default=50, help="requests at once (default 50)")


def main(args: Any) -> int:
    try:
        cfg = configuration.parse(args.config)
    except configuration.ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    rows = asyncio.run(check_all(cfg, args.concurrency))
    if args.json:
        for row in rows:
            print(json.dumps(asdict(row), ensure_ascii=False))
    else:
        print_table(rows)
    return exit_code(rows)


def exit_code(rows: list[Row]) -> int:
    return max((RANK[r.severity] for r in rows), default=0)


def request_for(tasks: list[TaskDef], now: float) -> CheckRequested:
    """The request the scheduler would publish for this group."""
    return request.build(
        tasks, "oneshot", request.scheduled_id(tasks[0].group, "oneshot", now), now, now
    )


async def check_all(
    cfg: configuration.Config, concurrency: int = 50, ssl_context: ssl.SSLContext | None = None
) -> list[Row]:
    groups: dict[str, list[TaskDef]] = defaultdict(list)
    for task in cfg.tasks.values():
        # Pushed monitors (heartbeats) have nothing to probe: the scheduler judges their pings.
        if not getattr(CATALOGUE.get(task.check), "PUSH", False):
            groups[task.group].append(task)
    slots = asyncio.Semaphore(max(1, concurrency))
    async with Prober(concurrency, ssl_context) as prober:

        async def one(tasks: list[TaskDef]) -> list[Row]:
            req = request_for(tasks, time.time())
            # What is printed may end in a CI log: secrets masked as the log masks them.
            secrets = RequestSecrets.of(req, values=cfg.secrets)
            async with slots:
                done = await prober.run(req, "oneshot", "oneshot", secrets=secrets)
            verdict = judge(tasks, {}, GroupState(), done, 0, cfg.ssl_thresholds)
            outcomes = {o.task: o for o in done.outcomes}
            obs = done.observation
            rows = []
            for task, j in zip(tasks, verdict.judgements, strict=True):
                outcome = outcomes.get(task.id)
                rows.append(
                    Row(
                        public_url(task.url, cfg.secrets),
                        task.method,
                        task.ip_version,
                        task.check,
                        task.expected,
                        outcome.status if outcome else "error",
                        j.severity,
                        j.reason,
                        obs.status,
                        obs.elapsed_ms,
                        obs.facts,
                    )
                )
            return rows

        results = await asyncio.gather(*(one(tasks) for tasks in groups.values()))
    return sorted(
        (r for rows in results for r in rows),
        key=lambda r: (r.url, r.method, r.ip_version, r.check),
    )


def print_table(rows: list[Row]) -> None:
    for r in rows:
        expected = json.dumps(r.expected, ensure_ascii=False)
        print(
            f"{r.severity.upper():8} {r.status:7} {r.method} {r.url} (IPv{r.ip_version}) "
            f"{r.check}: {expected}\n         {r.context}"
        )
    counts = Counter(r.severity for r in rows)
    summary = ", ".join(
        f"{counts[s]} {s}" for s in ("ok", "warning", "critical", "unknown") if counts[s]
    )
    print(f"{len(rows)} tasks: {summary or 'nothing to check'}")
