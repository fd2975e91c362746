"""``tocsin config check|apply|show|history``."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from configuration import published
from configuration.diff import TooLarge
from configuration.inforce import (
    Refused,
    RefusedPart,
    apply_config,
    in_force,
    last_settings,
    who,
)
from configuration.printed import load
from events import codec, streams, subjects
from events.types import ConfigApplied
from runtime import bus


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def check(args: Any) -> int:
    """Exit 0 and a summary, or 2 and one ``FILE:LINE:COL: key.path: message`` line per error."""
    cfg = load(args.file)
    if cfg is None:
        return 2
    for warning in cfg.warnings:
        print(warning, file=sys.stderr)
    tasks = cfg.tasks.values()
    targets = {urlsplit(t.url)[:2] for t in tasks}
    paths = {(t.url, t.method) for t in tasks}
    groups = {t.group for t in tasks}
    per_freq = Counter(t.frequency for t in tasks)
    per_check = Counter(t.check for t in tasks)
    print(f"{args.file}: valid")
    print(f"  websites:       {len(targets)}")
    print(f"  paths:          {len(paths)}")
    print(f"  tasks:          {len(cfg.tasks)}")
    print(f"  request groups: {len(groups)}")
    for freq, n in sorted(per_freq.items()):  # by the seconds: their printed form is for reading
        print(f"  every {_duration(freq)}: {n} tasks")
    print("  checks: " + ", ".join(f"{kind} {n}" for kind, n in sorted(per_check.items())))
    if cfg.hosts is None:
        print("  hosts:          observed, not judged (no hosts section)")
    else:
        print(f"  hosts:          judged; {len(cfg.hosts.machines)} with their own settings")
    for t in sorted(tasks, key=lambda t: t.domain):
        if t.check == "heartbeat":
            print(f"  heartbeat {t.domain}: ping /ping/{t.expected['uuid']}")
    return 0


def apply(args: Any) -> int:
    cfg = load(args.file)
    if cfg is None:
        return 2

    async def go() -> int:
        async with bus.oneshot(args.nats_url, "config-apply") as nc:
            js = nc.jetstream()
            await streams.ensure(js, cfg.locations)
            try:
                _, before = await last_settings(js)
            except RefusedPart:
                before = None  # refused by every service: no secret of it is in force
            try:
                ev = await apply_config(js, cfg, who())
            except (TooLarge, Refused) as exc:
                print(f"{args.file}: not applied: {exc}", file=sys.stderr)
                return 2
        if ev is None:
            print("no change: this configuration is already in force")
        else:
            settings = "; settings changed" if ev.settings is not None else ""
            print(
                f"applied {cfg.digest[:12]}: {len(ev.added)} added, {len(ev.changed)} "
                f"changed, {len(ev.removed)} removed{settings}"
            )
            _new_channel_secrets(args.file, before, published.public(cfg))
        return 0

    return asyncio.run(go())


def _new_channel_secrets(path: str, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    """Channel secrets the log did not hold before: the log holds them masked, so a notifier
    sends with them only once its own file or environment has them."""
    old = published.channel_masks(before)
    new = sorted({p for m, p in published.channel_masks(after).items() if m not in old})
    if new:
        print(
            f"note: new secret values for the notifier: {', '.join(new)}. The log holds them "
            f"masked; a notifier takes them from its own file (one started with {path} reads "
            "it again now; one started with another file needs them there, then SIGHUP) or "
            "its environment, and keeps these channels' notifications queued until then.",
            file=sys.stderr,
        )


def show(args: Any) -> int:
    """The configuration in force: the fold of the log's ``config.applied`` events."""

    async def go() -> int:
        async with bus.oneshot(args.nats_url, "config-show") as nc:
            now = await in_force(nc.jetstream())
        if not now.last_seq:
            print("no configuration applied yet", file=sys.stderr)
            return 1
        when = datetime.fromtimestamp(now.at or 0, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"revision {(now.revision or '?')[:12]} applied {when} by {now.applied_by}")
        print(f"{len(now.tasks)} tasks (#{now.last_seq}):")
        for t in sorted(now.tasks.values(), key=lambda t: (t.domain, t.url, t.check)):
            expected = msgspec.json.encode(t.expected).decode()
            where = ",".join(t.locations) or "default"
            print(
                f"  {t.id}  {t.method} {t.url}  {t.check}: {expected}  every "
                f"{_duration(t.frequency)}  at {where}"
            )
        if now.settings is None:
            print("settings: none in the log (applied before they were): each service's file")
        else:
            print("settings (secrets masked):")
            shown = msgspec.json.format(msgspec.json.encode(now.settings), indent=2).decode()
            print("\n".join(f"  {line}" for line in shown.splitlines()))
        return 0

    return asyncio.run(go())


def history(args: Any) -> int:
    async def go() -> None:
        async with bus.oneshot(args.nats_url, "config-history") as nc:
            js = nc.jetstream()
            settings = None  # the last ones logged, to say when an apply changed them
            async for msg in bus.replay(js, subjects.CONFIG_APPLIED):
                try:
                    ev = codec.decode(msg.data, msg.subject)
                except codec.DecodeError as exc:
                    print(f"#{msg.metadata.sequence.stream} not a configuration: {exc}")
                    continue
                assert isinstance(ev, ConfigApplied)  # the contract admits nothing else here
                when = datetime.fromtimestamp(ev.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
                part = f" part {ev.part}/{ev.parts}" if ev.parts > 1 else ""
                moved = None not in (settings, ev.settings) and ev.settings != settings
                settings = settings if ev.settings is None else ev.settings
                print(
                    f"#{msg.metadata.sequence.stream} {when} {ev.revision[:12]} by "
                    f"{ev.applied_by} from {ev.source}{part}: +{len(ev.added)} "
                    f"~{len(ev.changed)} -{len(ev.removed)}"
                    + (", settings changed" if moved else "")
                )

    asyncio.run(go())
    return 0
