"""/metrics in the Prometheus text format, written by prometheus_client.

Task counts, checks completed and response-time quantiles come from the read models;
projector lag and consumer pending counts need NATS (NATS_URL, with the service's
credentials from TOCSIN_NATS_CREDS like every service), and are left out, with
``tocsin_nats_up 0``, when it is not reachable. The web's own request latency is a
histogram kept in this process.

Each scrape builds its metric families afresh from the database (a snapshot), and the
exposition is prometheus_client's, so names, types and label escaping follow the format
(``promtool check metrics`` runs on it in the tests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from nats.js.api import ConsumerInfo
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from events import streams
from runtime.logs import Log
from services.web import edges, eventlog, hostmetrics, hosts, queries, staleness
from services.web.auth import api_access

log = Log("tocsin.web.metrics")
router = APIRouter(include_in_schema=False)


def http_histogram(registry: CollectorRegistry) -> Histogram:
    """The web's request latency, per method and route template (never the raw path)."""
    return Histogram(
        "tocsin_http_request_duration_seconds",
        "Web request duration",
        ["method", "route"],
        registry=registry,
    )


async def timing(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    start = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path and path != "/live":  # the live stream lasts as long as the page is open
        request.app.state.http_hist.labels(request.method, path).observe(
            time.perf_counter() - start
        )
    return response


class _Snapshot:
    """A collector of families gathered beforehand: the read models are asked
    asynchronously, and prometheus_client's collection is synchronous."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


#: The one ``consumer`` label of every ephemeral consumer (a page's live stream, a command's
#: read): their random names would make a new series each time, for Prometheus to keep.
EPHEMERAL = "ephemeral"


def consumer_counts(found: list[ConsumerInfo]) -> dict[str, tuple[int, int]]:
    """Pending and ack-pending by consumer label: durable ones by name, ephemeral ones summed."""
    out: dict[str, tuple[int, int]] = {}
    for c in found:
        name = c.name if c.config.durable_name else EPHEMERAL
        waiting, held = out.get(name, (0, 0))
        out[name] = (waiting + (c.num_pending or 0), held + (c.num_ack_pending or 0))
    return out


def _gauge(name: str, help_: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_, value=value)


async def _nats_families(request: Request, position: int | None) -> list[Metric]:
    """``position``: the projector's, or None when the read model is out of reach (no lag)."""
    url = request.app.state.auth.settings.nats_url
    if not url:
        return []
    up = "Whether the web reached NATS for these metrics"
    pending = GaugeMetricFamily(
        "tocsin_consumer_pending",
        "Messages not yet delivered to a consumer",
        labels=["stream", "consumer"],
    )
    acks = GaugeMetricFamily(
        "tocsin_consumer_ack_pending",
        "Messages delivered, not yet acknowledged",
        labels=["stream", "consumer"],
    )
    try:
        js = (await eventlog.connected(request.app.state, url)).jetstream()
        info = await asyncio.wait_for(js.stream_info(streams.EVENTS), eventlog.WAIT)
        last = info.state.last_seq
        for stream in (streams.EVENTS, streams.WORK):
            found = await asyncio.wait_for(js.consumers_info(stream), eventlog.WAIT)
            for name, (waiting, held) in consumer_counts(found).items():
                pending.add_metric([stream, name], waiting)
                acks.add_metric([stream, name], held)
    except Exception as exc:
        error = exc.detail if isinstance(exc, HTTPException) else eventlog.why(exc)
        log.warning("NATS metrics unavailable", error=error)
        return [_gauge("tocsin_nats_up", up, 0)]
    lag = (
        []
        if position is None
        else [
            _gauge(
                "tocsin_projector_lag_events",
                "Events in the log not yet projected",
                max(0, last - position),
            )
        ]
    )
    return [
        _gauge("tocsin_nats_up", up, 1),
        _gauge("tocsin_events_last_seq", "Last sequence of the EVENTS stream", last),
        *lag,
        pending,
        acks,
    ]


def _response_summary(q: dict[str, Any]) -> Metric:
    # A summary: quantiles over the last 5 minutes, with the count and sum of that window.
    m = Metric(
        "tocsin_check_response_seconds",
        "Check response time over the last 5 minutes",
        "summary",
    )
    for k in ("0.5", "0.9", "0.99"):
        if q.get(k) is not None:
            m.add_sample("tocsin_check_response_seconds", {"quantile": k}, q[k] / 1000)
    m.add_sample("tocsin_check_response_seconds_count", {}, float(q.get("count") or 0))
    m.add_sample("tocsin_check_response_seconds_sum", {}, float(q.get("sum") or 0) / 1000)
    return m


@router.get("/metrics", dependencies=[Depends(api_access)])
async def metrics(request: Request) -> Response:
    up = "Whether the web reached its read model (PostgreSQL) for these metrics"
    try:
        families = await _read_model_families(request)
    except edges.UNREACHABLE as exc:
        # An outage is what a scrape must show, not hide behind an error: the rest still goes.
        log.warning("read model unreachable for metrics", error=type(exc).__name__)
        families = [_gauge("tocsin_read_model_up", up, 0)]
        families += await _nats_families(request, None)
    else:
        families.insert(0, _gauge("tocsin_read_model_up", up, 1))
    families += request.app.state.metrics_registry.collect()
    return Response(generate_latest(_Snapshot(families)), media_type=CONTENT_TYPE_LATEST)  # type: ignore[arg-type]


async def _read_model_families(request: Request) -> list[Metric]:
    async with request.app.state.pool.acquire() as conn:
        counts = await queries.counts(conn)
        completed = await queries.agent_checks(conn)
        q = await queries.response_quantiles(conn)
        pos = await queries.position(conn)
        fresh = await staleness.freshness(conn, request.app.state)
        host_rows = await hosts.hosts(conn)
    tasks = GaugeMetricFamily("tocsin_tasks", "Tasks by current severity", labels=["severity"])
    for severity, n in counts.items():
        tasks.add_metric([severity], n)
    checks = CounterMetricFamily(
        "tocsin_checks_completed",
        "Checks completed per agent since the agent started (from its heartbeats)",
        labels=["agent", "location"],
    )
    for r in completed:
        checks.add_metric([r["name"], r["location"]], r["completed"])
    families: list[Metric] = [
        tasks,
        checks,
        _response_summary(q),
        _gauge(
            "tocsin_projector_position",
            "Last event sequence folded into the read models",
            pos.get("seq", 0),
        ),
        CounterMetricFamily(
            "tocsin_projector_undecodable",
            "Events the projector could not decode",
            value=pos.get("undecodable", 0),
        ),
    ]
    if pos.get("updated_at"):
        age = (datetime.now(UTC) - pos["updated_at"]).total_seconds()
        families.append(
            _gauge(
                "tocsin_projector_commit_age_seconds",
                "Seconds since the projector's last commit",
                age,
            )
        )
    families.append(
        _gauge(
            "tocsin_checks_stale",
            "1 when no check result came for far longer than the most frequent task "
            "(nothing dispatched, or no agent): see /healthz",
            1 if fresh.stale else 0,
        )
    )
    if fresh.age is not None:
        families.append(
            _gauge(
                "tocsin_last_result_age_seconds",
                "Seconds since the newest check result",
                fresh.age,
            )
        )
    families += await _nats_families(request, int(pos.get("seq", 0)))
    families += hostmetrics.gauges(hostmetrics.families(host_rows))
    return families
