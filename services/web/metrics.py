"""/metrics in the Prometheus text format.

Task counts, check rate and response-time quantiles come from the read models;
projector lag and consumer pending counts need NATS (NATS_URL), and are left
out, with ``tocsin_nats_up 0``, when it is not reachable. The web's own request
latency is a real (cumulative) histogram kept in this process.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from events import streams
from runtime.logs import Log
from services.web import queries
from services.web.auth import api_access

log = Log("tocsin.web.metrics")
router = APIRouter(include_in_schema=False)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    def __init__(self) -> None:
        self.series: dict[tuple[str, str], list[float]] = {}

    def observe(self, method: str, route: str, seconds: float) -> None:
        s = self.series.setdefault((method, route), [0.0] * (len(BUCKETS) + 2))
        s[bisect_left(BUCKETS, seconds)] += 1  # the last slot of the buckets is +Inf
        s[-1] += seconds

    def lines(self, name: str) -> list[str]:
        out = [f"# HELP {name} Web request duration", f"# TYPE {name} histogram"]
        for (method, route), s in sorted(self.series.items()):
            labels = f'method="{method}",route="{_esc(route)}"'
            cum = 0.0
            for bound, n in zip((*BUCKETS, "+Inf"), s[:-1], strict=True):
                cum += n
                out.append(f'{name}_bucket{{{labels},le="{bound}"}} {cum:g}')
            out.append(f"{name}_count{{{labels}}} {cum:g}")
            out.append(f"{name}_sum{{{labels}}} {s[-1]:.6f}")
        return out


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def timing(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    start = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path and path != "/live":  # the live stream lasts as long as the page is open
        request.app.state.http_hist.observe(request.method, path, time.perf_counter() - start)
    return response


def _gauge(
    out: list[str], name: str, help_: str, values: dict[str, Any] | Any, label: str = ""
) -> None:
    out += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
    if isinstance(values, dict):
        for k, v in values.items():
            if v is not None:
                out.append(f'{name}{{{label}="{_esc(str(k))}"}} {float(v):g}')
    elif values is not None:
        out.append(f"{name} {float(values):g}")


async def _nats_metrics(request: Request, out: list[str], position: int) -> None:
    url = request.app.state.auth.settings.nats_url
    if not url:
        return
    try:
        nc = request.app.state.nats
        if nc is None or not nc.is_connected:
            import nats

            nc = await asyncio.wait_for(
                nats.connect(url, name="tocsin-web-metrics", max_reconnect_attempts=1), 3
            )
            request.app.state.nats = nc
        js = nc.jetstream()
        info = await asyncio.wait_for(js.stream_info(streams.EVENTS), 3)
        last = info.state.last_seq
        pending: dict[str, int] = {}
        acks: dict[str, int] = {}
        for stream in (streams.EVENTS, streams.WORK):
            for c in await asyncio.wait_for(js.consumers_info(stream), 3):
                key = f'{stream}",consumer="{c.name}'
                pending[key] = c.num_pending or 0
                acks[key] = c.num_ack_pending or 0
    except Exception as exc:
        log.warning("NATS metrics unavailable", error=str(exc))
        _gauge(out, "tocsin_nats_up", "Whether the web reached NATS for these metrics", 0)
        return
    _gauge(out, "tocsin_nats_up", "Whether the web reached NATS for these metrics", 1)
    _gauge(out, "tocsin_events_last_seq", "Last sequence of the EVENTS stream", last)
    _gauge(
        out,
        "tocsin_projector_lag_events",
        "Events in the log not yet projected",
        max(0, last - position),
    )
    _gauge(
        out,
        "tocsin_consumer_pending",
        "Messages not yet delivered to a consumer",
        pending,
        "stream",
    )
    _gauge(
        out,
        "tocsin_consumer_ack_pending",
        "Messages delivered, not yet acknowledged",
        acks,
        "stream",
    )


@router.get("/metrics", dependencies=[Depends(api_access)])
async def metrics(request: Request) -> PlainTextResponse:
    out: list[str] = []
    async with request.app.state.pool.acquire() as conn:
        counts = await queries.counts(conn)
        rate = await queries.checks_per_second(conn)
        q = await queries.response_quantiles(conn)
        pos = await queries.position(conn)
    _gauge(out, "tocsin_tasks", "Tasks by current severity", counts, "severity")
    _gauge(
        out, "tocsin_checks_per_second", "Results recorded per second over the last minute", rate
    )
    _gauge(
        out,
        "tocsin_check_response_seconds",
        "Check response time quantiles over the last 5 minutes",
        {k: v / 1000 for k, v in q.items() if k.startswith("0.") and v is not None},
        "quantile",
    )
    _gauge(
        out,
        "tocsin_projector_position",
        "Last event sequence folded into the read models",
        pos.get("seq", 0),
    )
    if pos.get("updated_at"):
        age = (datetime.now(UTC) - pos["updated_at"]).total_seconds()
        _gauge(
            out,
            "tocsin_projector_commit_age_seconds",
            "Seconds since the projector's last commit",
            age,
        )
    _gauge(
        out,
        "tocsin_projector_undecodable_total",
        "Events the projector could not decode",
        pos.get("undecodable", 0),
    )
    await _nats_metrics(request, out, int(pos.get("seq", 0)))
    out += request.app.state.http_hist.lines("tocsin_http_request_duration_seconds")
    return PlainTextResponse(
        "\n".join(out) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
    )
