"""``tocsin replay --config proposed.yaml --since 7d``: what the proposed configuration
would have sent over the period, beside what was sent (whatif.py decides; this reads the
log with an ephemeral, unacknowledged consumer and prints). It publishes nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from checks.quorum import configured
from configuration import config as configuration
from configuration import redaction
from events import codec, streams, subjects
from events.types import (
    CheckCompleted,
    IncidentAcknowledged,
    NotificationSent,
    SilenceAdded,
    SilenceRemoved,
    TaskJudged,
)
from runtime import bus
from services.notifier import settings as notify_settings
from services.notifier.whatif import Row, WhatIf, compare, run

KEPT = (CheckCompleted, TaskJudged, NotificationSent)
ALWAYS = (SilenceAdded, SilenceRemoved, IncidentAcknowledged)


async def read(nats_url: str, since: float) -> list[tuple[int, object]]:
    """Silences and acknowledgements of the whole log, then completions, judgements and
    sends from ``since`` on, in log order."""
    out: list[tuple[int, object]] = []
    async with bus.oneshot(nats_url, "tocsin-replay") as nc:
        js = nc.jetstream()
        for subject in (subjects.SILENCE_ALL, subjects.ACKNOWLEDGED):
            async for msg in bus.replay(js, subject):
                _keep(out, msg, ALWAYS)
        start = dt.datetime.fromtimestamp(since, dt.UTC)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
            filter_subject=subjects.ALL,
        )
        sub = await js.pull_subscribe(
            subjects.ALL, durable=None, stream=streams.EVENTS, config=config
        )
        try:
            pending = (await sub.consumer_info()).num_pending or 0
            while pending > 0:
                msgs = await sub.fetch(min(1000, pending), timeout=5)
                for msg in msgs:
                    _keep(out, msg, KEPT)
                pending -= len(msgs)
        finally:
            await sub.unsubscribe()
    return sorted(out, key=lambda x: x[0])


def _keep(out: list[tuple[int, object]], msg: Any, kinds: tuple[type, ...]) -> None:
    try:
        ev = codec.decode(msg.data, msg.subject)
    except codec.DecodeError:
        return  # the projector records it as a dead letter; nothing to replay
    if isinstance(ev, kinds):
        out.append((msg.metadata.sequence.stream, ev))


async def replay(nats_url: str, config_path: str, since: float) -> tuple[WhatIf, list[Row]]:
    cfg = configuration.parse(config_path)
    s = notify_settings.from_config(cfg)
    # The settings' tasks spell their domain as the log does (``redaction.domain_key``).
    sites = {redaction.domain_key(d, cfg.secrets): w for d, w in cfg.websites.items()}
    result = run(
        s,
        cfg.ssl_thresholds,
        await read(nats_url, since),
        since,
        lambda domain: configured(sites, cfg.general, domain),
    )
    return result, compare(result.actual, result.proposed)


def report(s: notify_settings.NotifySettings, result: WhatIf, rows: list[Row]) -> list[str]:
    names = {t.id: f"{t.url} {t.check} IPv{t.ip_version}" for t in s.tasks.values()}
    lines = [f"{'when (UTC)':19}  {'task':48}  {'channel':16}  {'really':22}  would"]
    for r in rows:
        what = f"{r.kind} {r.severity}"
        really = what if r.actual_at is not None else "—"
        would = {
            "same": what,
            "not sent": "— (not sent)",
            "would be sent": f"{what} (would be sent)",
            "moved": f"{what} at {_when(r.proposed_at)}",
        }[r.verdict]
        when = _when(r.actual_at if r.actual_at is not None else r.proposed_at)
        lines.append(
            f"{when:19}  {names.get(r.task, r.task)[:48]:48}  {r.channel[:16]:16}  "
            f"{really[:22]:22}  {would}"
        )
    counts = {
        v: sum(r.verdict == v for r in rows) for v in ("same", "not sent", "would be sent", "moved")
    }
    lines.append(
        f"{len(result.actual)} sent, {len(result.proposed)} with the proposal: "
        + ", ".join(f"{n} {v}" for v, n in counts.items())
    )
    for task, why in sorted(result.skipped.items()):
        lines.append(f"not replayed: {names.get(task, task)}: {why}")
    return lines


def _when(at: float | None) -> str:
    if at is None:
        return ""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def since_of(text: str, now: float | None = None) -> float:
    """``7d``, ``12h`` … before now, or an ISO date."""
    now = time.time() if now is None else now
    try:
        return now - configuration.parse_duration(text)
    except ValueError:
        return dt.datetime.fromisoformat(text).astimezone().timestamp()
