"""``tocsin notifier``, ``tocsin silence add|list|remove`` and ``tocsin notify test``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
import uuid
from typing import Any

import msgspec
import nats
from nats.js import JetStreamContext

from configuration.config import ConfigError, parse_duration
from configuration.inforce import who
from events import codec, subjects
from events.types import IncidentAcknowledged, SilenceAdded, SilenceRemoved
from runtime import bus, cliopts
from security.client import ClientSecurity
from services.notifier import channels, replay, targets
from services.notifier import settings as notify_settings
from services.notifier.message import Message, outcome
from services.notifier.service import NotifierOptions, main
from services.notifier.silences import fold


def register(sub: Any) -> dict[str, Any]:
    p = sub.add_parser(
        "notifier",
        help="send notifications when tasks change severity",
        description="Turn judgements into notifications (local, mail, gotify, webhook, "
        "apprise), once each, recorded in the log, with the settings in force in the log "
        "(FILE until one is applied; SIGHUP re-reads it for its secret values).",
    )
    cliopts.nats(p)
    cliopts.db(p)
    cliopts.config(p)
    p.add_argument(
        "--web-url",
        default=cliopts.env("TOCSIN_WEB_URL"),
        help="public URL of the web service, for links (env TOCSIN_WEB_URL)",
    )

    p = sub.add_parser("silence", help="hold notifications back for a while (in the log)")
    ssub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = ssub.add_parser("add", help="silence a domain, a task, or everything")
    cliopts.nats(a)
    a.add_argument(
        "--domain",
        help="a domain of the tasks in force (example.org, host:web1) or a website's URL as "
        "the configuration writes it; with neither this nor --task: everything",
    )
    a.add_argument("--task", help="one task id, in force")
    a.add_argument("--for", dest="duration", required=True, help="how long: 30m, 2h, 1d")
    a.add_argument("--start", help="ISO date and time it starts (default: now)")
    a.add_argument("--reason", default="", help="why, for the audit trail")
    a = ssub.add_parser("list", help="silences in force or to come")
    cliopts.nats(a)
    a.add_argument("--all", action="store_true", help="include the ones that ended")
    a = ssub.add_parser("remove", help="end a silence now")
    cliopts.nats(a)
    a.add_argument("id")

    p = sub.add_parser("notify", help="notification utilities")
    nsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = nsub.add_parser("test", help="send a test notification through one channel")
    cliopts.config(t)
    cliopts.nats(t)
    t.add_argument(
        "--channel", required=True, help="local, mail, gotify, apprise:<group> or webhook:<name>"
    )
    t.add_argument(
        "--severity", default="critical", choices=["ok", "warning", "critical", "unknown"]
    )
    a = sub.add_parser(
        "ack",
        help="acknowledge a task's incident: no reminders nor escalation until it changes",
        description="Record who acknowledges a failing task, and why, in the log. The "
        "notifier stops reminders and escalation until its severity changes or it recovers.",
    )
    cliopts.nats(a)
    a.add_argument("task", help="the task id (as on its page and in notifications)")
    a.add_argument("--reason", required=True, help="why, for the audit trail")
    r = sub.add_parser(
        "replay",
        help="what a proposed configuration would have notified, beside what was",
        description="Re-run the judge and the notification decisions over the completions "
        "in the log with a proposed configuration (thresholds, retries, dependencies, "
        "silences, acknowledgements) and print, beside what really was sent, what would have "
        "been sent, not sent, or sent at another time. Writes nothing to the log.",
    )
    cliopts.config(r)
    cliopts.nats(r)
    r.add_argument("--since", default="7d", help="how far back: 7d, 12h, or an ISO date")
    return {
        "replay": cmd_replay,
        "notifier": cmd_notifier,
        "silence": cmd_silence,
        "notify": cmd_notify,
        "ack": cmd_ack,
    }


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        since = replay.since_of(args.since)
        s = notify_settings.load(args.config)
    except (ConfigError, ValueError) as exc:
        print(f"tocsin replay: {exc}", file=sys.stderr)
        return 2
    result, rows = asyncio.run(replay.replay(args.nats_url, args.config, since))
    print("\n".join(replay.report(s, result, rows)))
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        print("tocsin ack: --reason must say why", file=sys.stderr)
        return 2
    try:
        ev = asyncio.run(acknowledge(args.nats_url, args.task, args.reason.strip()))
    except (codec.DecodeError, targets.UnknownTarget) as exc:
        print(f"tocsin ack: {exc}; nothing recorded", file=sys.stderr)
        return 2
    print(f"task {ev.task} acknowledged by {ev.by}")
    return 0


async def acknowledge(nats_url: str, task: str, reason: str) -> IncidentAcknowledged:
    """Record the acknowledgement of ``task``, a task in force (``targets.UnknownTarget``
    otherwise; ``codec.DecodeError`` for what the log would refuse, said before connecting)."""
    ev = IncidentAcknowledged(at=time.time(), task=task, by=who(), reason=reason)
    data = codec.encode_admitted(ev, subjects.ACKNOWLEDGED)
    async with bus.oneshot(nats_url, "tocsin-ack") as nc:
        js = nc.jetstream()
        targets.task(await targets.in_force_domains(js), task)
        await js.publish(
            subjects.ACKNOWLEDGED,
            data,
            headers={"Nats-Msg-Id": f"ack.{task}.{uuid.uuid4().hex}"},
        )
    return ev


def cmd_notifier(args: argparse.Namespace) -> int:

    try:
        cliopts.run(
            main(NotifierOptions(args.nats_url, args.database_url, args.config, args.web_url))
        )
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def cmd_silence(args: argparse.Namespace) -> int:

    if args.action == "add":
        try:
            seconds = parse_duration(args.duration)
            start = (
                dt.datetime.fromisoformat(args.start).astimezone().timestamp()
                if args.start
                else time.time()
            )
        except ValueError as exc:
            print(f"tocsin silence add: {exc}", file=sys.stderr)
            return 2
        if start + seconds <= time.time():
            # It would be recorded, listed and audited, and hold nothing back.
            ends = dt.datetime.fromtimestamp(start + seconds, dt.UTC).strftime("%Y-%m-%d %H:%M")
            print(
                f"tocsin silence add: the silence would end {ends} UTC, already past "
                "(--start and --for); nothing silenced",
                file=sys.stderr,
            )
            return 2
        sid = uuid.uuid4().hex[:8]
        try:
            ev = asyncio.run(
                add_silence(
                    args.nats_url, sid, start, start + seconds, args.reason, args.domain, args.task
                )
            )
        except (codec.DecodeError, targets.UnknownTarget) as exc:
            print(f"tocsin silence add: {exc}; nothing silenced", file=sys.stderr)
            return 2
        print(f"silence {sid} of {_what(ev)} until {_when(ev.ends)}")
        return 0
    if args.action == "remove":
        found = asyncio.run(remove_silence(args.nats_url, args.id))
        if not found:
            print(f"tocsin silence remove: no silence {args.id} in force", file=sys.stderr)
            return 1
        print(f"silence {args.id} removed")
        return 0
    now = time.time()
    for s in sorted(asyncio.run(list_silences(args.nats_url)).values(), key=lambda s: s.starts):
        if args.all or s.ends > now:
            print(f"{s.id}  {_when(s.starts)} → {_when(s.ends)}  {_what(s)}  by {s.by}  {s.reason}")
    return 0


def _what(s: SilenceAdded) -> str:
    return (s.task and f"task {s.task}") or s.domain or "everything"


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M %Z")


async def add_silence(
    nats_url: str,
    sid: str,
    starts: float,
    ends: float,
    reason: str,
    domain: str | None = None,
    task: str | None = None,
) -> SilenceAdded:
    """Record a silence of ``domain`` and/or ``task`` (everything: neither), which must name
    tasks in force (``targets.UnknownTarget`` otherwise); the domain as the tasks spell it."""
    ev = SilenceAdded(
        at=time.time(),
        id=sid,
        starts=starts,
        ends=ends,
        reason=reason,
        by=who(),
        domain=domain,
        task=task,
    )
    # What the log would refuse (a start before 2000, a task name past its bound) is said
    # before the log is asked for the tasks in force.
    subject = subjects.silence("added")
    data = codec.encode_admitted(ev, subject)
    async with bus.oneshot(nats_url, "tocsin-silence") as nc:
        js = nc.jetstream()
        if domain is not None or task is not None:
            domain, task = targets.target(await targets.in_force_domains(js), domain, task)
            ev = msgspec.structs.replace(ev, domain=domain, task=task)
            data = codec.encode_admitted(ev, subject)
        await js.publish(
            subject,
            data,
            headers={"Nats-Msg-Id": f"silence.added.{sid}"},
        )
    return ev


async def list_silences(nats_url: str) -> dict[str, SilenceAdded]:
    async with bus.oneshot(nats_url, "tocsin-silence") as nc:
        return await _silences(nc.jetstream())


async def _silences(js: JetStreamContext) -> dict[str, SilenceAdded]:
    silences: dict[str, SilenceAdded] = {}
    async for msg in bus.replay(js, subjects.SILENCE_ALL):
        try:
            ev = codec.decode(msg.data, msg.subject)
        except codec.DecodeError:
            continue
        if isinstance(ev, SilenceAdded | SilenceRemoved):
            fold(silences, ev)
    return silences


async def remove_silence(nats_url: str, sid: str) -> bool:
    async with bus.oneshot(nats_url, "tocsin-silence") as nc:
        js = nc.jetstream()
        if sid not in await _silences(js):
            return False
        ev = SilenceRemoved(at=time.time(), id=sid, by=who())
        await js.publish(
            subjects.silence("removed"),
            codec.encode(ev),
            headers={"Nats-Msg-Id": f"silence.removed.{sid}"},
        )
    return True


def cmd_notify(args: argparse.Namespace) -> int:

    try:
        s = notify_settings.load(args.config)
    except Exception as exc:
        print(exc, file=sys.stderr)
        return 2
    results = asyncio.run(send_test(s, args.channel, args.severity, args.nats_url))
    if not results:
        print(f"tocsin notify test: {args.channel} has no recipient configured", file=sys.stderr)
        return 1
    for label, error in results:
        print(f"{args.channel} → {label}: {'sent' if error is None else 'FAILED: ' + error}")
    return 0 if all(e is None for _, e in results) else 1


async def send_test(
    s: Any, channel: str, severity: str, nats_url: str | None = None
) -> list[tuple[str, str | None]]:
    """Send through ``channel`` now (no outbox: the operator is watching); record each
    outcome in the log when NATS is reachable."""

    now = time.time()
    key = f"test:{uuid.uuid4().hex[:12]}"
    m = Message(
        key=key,
        kind="test",
        severity=severity,
        at=now,
        web_url=s.web_url,
        reason=f"A test notification sent by {who()} with `tocsin notify test`.",
    )
    results: list[tuple[str, str | None]] = []
    events: list[tuple[str, Any]] = []
    for i, to in enumerate(channels.recipients(s, channel, None)):
        error = None
        try:
            await channels.send(s, channel, to, m)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        results.append((to.label, error))
        ev = outcome(m, f"{key}:{i}", channel, to.label, 1, time.time(), error)
        events.append(("sent" if error is None else "failed", ev))
    if nats_url and events:
        try:
            # The notifier's credentials (TOCSIN_NATS_CREDS), as the service itself uses.
            nc = await nats.connect(
                nats_url,
                connect_timeout=2,
                max_reconnect_attempts=0,
                **ClientSecurity.from_env().connect_options(),
            )
            js = nc.jetstream()
            for result, ev in events:
                await js.publish(subjects.notification(result), codec.encode(ev), timeout=2)
            await nc.close()
        except Exception as exc:
            print(f"(not recorded in the log: {exc})", file=sys.stderr)
    return results
