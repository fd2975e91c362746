"""The configuration in force: the fold of every ``config.applied`` event in the log.

Applying a configuration publishes its diff against what the log holds, so every service that
follows the log sees the same task set, and a restart never reverts an apply.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import time

from configuration import config as configuration
from configuration import diff as configdiff
from events import codec, subjects
from events.types import ConfigApplied, TaskDef
from runtime import bus
from runtime.logs import Log

log = Log("tocsin.config")


async def current_tasks(js) -> dict[str, TaskDef]:  # type: ignore[no-untyped-def]
    events = []
    async for msg in bus.replay(js, subjects.CONFIG_APPLIED):
        with contextlib.suppress(codec.DecodeError):
            ev = codec.decode(msg.data, msg.subject)
            if isinstance(ev, ConfigApplied):
                events.append(ev)
    return configdiff.fold(events)


async def apply_config(js, cfg: configuration.Config, applied_by: str) -> ConfigApplied | None:  # type: ignore[no-untyped-def]
    """Publish the diff between the configuration in force (from the log) and ``cfg``.

    Nothing is published when nothing changed; the message id (file hash and
    previous state) makes a repeated apply of the same change land once.
    """
    old = await current_tasks(js)
    new = {k: configdiff.redact(v, cfg.secrets) for k, v in cfg.tasks.items()}
    added, changed, removed = configdiff.diff(old, new)
    if configdiff.changes_are_empty(added, changed, removed):
        return None
    event = ConfigApplied(
        at=time.time(),
        revision=cfg.digest,
        source=cfg.source,
        applied_by=applied_by,
        added=added,
        changed=changed,
        removed=removed,
    )
    base = configuration.task_id("", "", 0, None, "state", sorted(old))  # fingerprint of old set
    for part in configdiff.split(event):
        await js.publish(
            subjects.CONFIG_APPLIED,
            codec.encode(part),
            headers={"Nats-Msg-Id": f"config.{cfg.digest[:16]}.{base}.{part.part}"},
        )
    log.info("configuration applied", added=len(added), changed=len(changed), removed=len(removed))
    return event


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "?"
    return f"{user}@{socket.gethostname()}"
