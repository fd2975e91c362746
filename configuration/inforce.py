"""The configuration in force: the fold of every ``config.applied`` event in the log.

Applying a configuration publishes its diff against what the log holds, so every service that
follows the log sees the same task set, and a restart never reverts an apply.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import time
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from configuration import config as configuration
from configuration import diff as configdiff
from configuration import redaction
from events import codec, streams, subjects
from events.types import ConfigApplied, TaskDef
from runtime import bus
from runtime.logs import Log

log = Log("tocsin.config")


#: JetStream's error code for a publish whose expected last subject sequence is not the last.
WRONG_LAST_SEQUENCE = 10071


@dataclass
class InForce:
    """The configuration the log holds: its tasks and the sequence of its last part."""

    tasks: dict[str, TaskDef] = field(default_factory=dict)
    last_seq: int = 0
    revision: str | None = None
    applied_by: str | None = None
    at: float | None = None


async def in_force(js: JetStreamContext) -> InForce:
    """Fold every ``config.applied`` of the log; one that does not decode is skipped (the
    projector records it as a dead letter)."""
    events = []
    found = InForce()
    async for msg in bus.replay(js, subjects.CONFIG_APPLIED):
        found.last_seq = msg.metadata.sequence.stream
        with contextlib.suppress(codec.DecodeError):
            ev = codec.decode(msg.data, msg.subject)
            if isinstance(ev, ConfigApplied):
                events.append(ev)
                found.revision, found.applied_by, found.at = ev.revision, ev.applied_by, ev.at
    found.tasks = configdiff.fold(events)
    return found


async def last_applied_seq(js: JetStreamContext) -> int:
    """The stream sequence of the last ``config.applied`` (0 when there is none): cheap
    enough to poll, so services notice an apply made anywhere."""
    try:
        raw = await js.get_last_msg(streams.EVENTS, subjects.CONFIG_APPLIED)
    except NotFoundError:
        return 0
    return int(raw.seq or 0)


async def current_tasks(js: JetStreamContext) -> dict[str, TaskDef]:
    return (await in_force(js)).tasks


async def apply_config(
    js: JetStreamContext, cfg: configuration.Config, applied_by: str
) -> ConfigApplied | None:
    """Publish the diff between the configuration in force (from the log) and ``cfg``.

    Nothing is published when nothing changed; the message id (file hash and
    previous state) makes a repeated apply of the same change land once. Each part is
    published only if the log's last ``config.applied`` is the one the diff was computed
    against: two applies racing do not both publish a diff of the same state; the loser
    computes its diff again against the winner's, so the history stays one chain.
    """
    while True:
        try:
            return await _apply_once(js, cfg, applied_by)
        except APIError as exc:
            if exc.err_code != WRONG_LAST_SEQUENCE:
                raise
            log.info("another apply landed first; diffing again against it")


async def _apply_once(
    js: JetStreamContext, cfg: configuration.Config, applied_by: str
) -> ConfigApplied | None:
    now = await in_force(js)
    old = now.tasks
    new = {k: redaction.redact(v, cfg.secrets) for k, v in cfg.tasks.items()}
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
    expected = now.last_seq
    for part in configdiff.split(event):
        ack = await js.publish(
            subjects.CONFIG_APPLIED,
            codec.encode(part),
            headers={
                "Nats-Msg-Id": f"config.{cfg.digest[:16]}.{base}.{part.part}",
                "Nats-Expected-Last-Subject-Sequence": str(expected),
            },
        )
        expected = ack.seq
    log.info("configuration applied", added=len(added), changed=len(changed), removed=len(removed))
    return event


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "?"
    return f"{user}@{socket.gethostname()}"
