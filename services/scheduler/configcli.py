"""``tocsin config check|apply|history``."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from configuration import config as configuration


def _load(path: str) -> configuration.Config | None:
    try:
        return configuration.parse(path)
    except configuration.ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def check(args: Any) -> int:
    """Exit 0 and a summary, or 2 and one ``FILE:LINE:COL: key.path: message`` line per error."""
    cfg = _load(args.file)
    if cfg is None:
        return 2
    tasks = cfg.tasks.values()
    targets = {urlsplit(t.url)[:2] for t in tasks}
    paths = {(t.url, t.method) for t in tasks}
    groups = {t.group for t in tasks}
    per_freq = Counter(_duration(t.frequency) for t in tasks)
    per_check = Counter(t.check for t in tasks)
    print(f"{args.file}: valid")
    print(f"  websites:       {len(targets)}")
    print(f"  paths:          {len(paths)}")
    print(f"  tasks:          {len(cfg.tasks)}")
    print(f"  request groups: {len(groups)}")
    for freq, n in sorted(per_freq.items(), key=lambda kv: _seconds(kv[0])):
        print(f"  every {freq}: {n} tasks")
    print("  checks: " + ", ".join(f"{kind} {n}" for kind, n in sorted(per_check.items())))
    return 0


def _seconds(text: str) -> float:
    return configuration.parse_duration(text)


def apply(args: Any) -> int:
    cfg = _load(args.file)
    if cfg is None:
        return 2

    async def go() -> None:
        from configuration.inforce import apply_config
        from configuration.inforce import who as _who
        from events import streams
        from runtime import bus

        nc = await bus.connect(args.nats_url, "config-apply")
        try:
            js = nc.jetstream()
            await streams.ensure(js, cfg.locations)
            ev = await apply_config(js, cfg, _who())
            if ev is None:
                print("no change: this configuration is already in force")
            else:
                print(
                    f"applied {cfg.digest[:12]}: {len(ev.added)} added, {len(ev.changed)} "
                    f"changed, {len(ev.removed)} removed"
                )
        finally:
            await bus.close(nc)

    asyncio.run(go())
    return 0


def history(args: Any) -> int:
    async def go() -> None:
        from events import codec, subjects
        from events.types import ConfigApplied
        from runtime import bus

        nc = await bus.connect(args.nats_url, "config-history")
        try:
            js = nc.jetstream()
            async for msg in bus.replay(js, subjects.CONFIG_APPLIED):
                ev = codec.decode(msg.data, msg.subject)
                assert isinstance(ev, ConfigApplied)
                when = datetime.fromtimestamp(ev.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
                part = f" part {ev.part}/{ev.parts}" if ev.parts > 1 else ""
                print(
                    f"#{msg.metadata.sequence.stream} {when} {ev.revision[:12]} by "
                    f"{ev.applied_by} from {ev.source}{part}: +{len(ev.added)} "
                    f"~{len(ev.changed)} -{len(ev.removed)}"
                )
        finally:
            await bus.close(nc)

    asyncio.run(go())
    return 0
