"""The configuration in force: the fold of every ``config.applied`` event in the log.

Applying a configuration publishes its diff against what the log holds and its settings, so
every service that follows the log sees the same tasks and settings, and a restart never
reverts an apply.
"""

from __future__ import annotations

import dataclasses
import getpass
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from configuration import config as configuration
from configuration import diff as configdiff
from configuration import published, redaction
from events import codec, streams, subjects
from events.types import ConfigApplied, TaskDef
from runtime import bus
from runtime.logs import Log

log = Log("tocsin.config")


#: JetStream's error code for a publish whose expected last subject sequence is not the last.
WRONG_LAST_SEQUENCE = 10071


class Refused(ValueError):
    """The event contract refuses the ``config.applied`` an apply would publish: nothing of
    it is published (every consumer would dead-letter it and stay on the previous one)."""


class RefusedPart(ValueError):
    """A ``config.applied`` in the log that the event contract refuses (a hostile or broken
    publisher): reported and skipped, the configuration in force stays."""

    def __init__(self, subject: str, seq: int, reason: str) -> None:
        super().__init__(f"configuration refused; skipped: {subject} seq {seq}: {reason}")
        self.subject, self.seq, self.reason = subject, seq, reason


@dataclass
class InForce:
    """The configuration the log holds: its tasks and the sequence of its last part."""

    tasks: dict[str, TaskDef] = field(default_factory=dict)
    #: The settings of the last apply that carried them (``configuration/published.py``);
    #: None: the log holds none yet.
    settings: dict[str, Any] | None = None
    last_seq: int = 0
    revision: str | None = None
    applied_by: str | None = None
    at: float | None = None


#: Parts fetched at a time: each takes up to an event's 256 kB, and a whole batch of 1,000
#: held a large configuration's every part at once (95 parts, 23 MB at 100,000 tasks).
FOLD_BATCH = 16


async def in_force(js: JetStreamContext, prefer: Mapping[str, TaskDef] | None = None) -> InForce:
    """Fold every ``config.applied`` of the log, part by part as they come; one that does not
    decode is reported and skipped (the projector records it as a dead letter), whether it
    is the first or a later one. A task ``prefer`` holds under the same id is taken from it:
    the log's copy is not kept beyond its part."""
    found = InForce()
    async for msg in bus.replay(js, subjects.CONFIG_APPLIED, batch=FOLD_BATCH):
        found.last_seq = msg.metadata.sequence.stream
        try:
            ev = codec.decode(msg.data, msg.subject)
        except codec.DecodeError as exc:
            log.error(
                "configuration refused; skipped",
                subject=msg.subject,
                seq=found.last_seq,
                reason=str(exc),
            )
            continue
        if isinstance(ev, ConfigApplied):
            configdiff.fold_one(found.tasks, ev, prefer)
            found.revision, found.applied_by, found.at = ev.revision, ev.applied_by, ev.at
            if ev.settings is not None:
                found.settings = ev.settings
    return found


def configuration_in_force(
    now: InForce, own: configuration.Config
) -> tuple[configuration.Config, list[str]]:
    """The log's tasks and settings with the secret values ``own`` (a service's file) and
    the environment have, and the masks left; ``own``'s settings while the log holds none
    (a log written before settings were in it) or none that read."""
    if now.settings is not None:
        try:
            return published.config(now.tasks, now.settings, own, now.revision)
        except (msgspec.ValidationError, TypeError, ValueError, AttributeError) as exc:
            # Only an admin can publish them; still, no service stops on what the log holds.
            log.error(
                "settings in the log do not read; this service's file's apply", error=str(exc)
            )
    return dataclasses.replace(own, tasks=now.tasks), []


async def last_applied_seq(js: JetStreamContext) -> int:
    """The stream sequence of the last ``config.applied`` (0 when there is none): cheap
    enough to poll, so services notice an apply made anywhere."""
    try:
        raw = await js.get_last_msg(streams.EVENTS, subjects.CONFIG_APPLIED)
    except NotFoundError:
        return 0
    return int(raw.seq or 0)


async def last_apply(js: JetStreamContext) -> ConfigApplied | None:
    """The last ``config.applied`` of the log, in one get: what was applied, from where, by
    whom. None when the log holds none (nor the stream yet), or one that does not decode."""
    try:
        raw = await js.get_last_msg(streams.EVENTS, subjects.CONFIG_APPLIED)
    except NotFoundError:
        return None
    try:
        ev = codec.decode(raw.data or b"", subjects.CONFIG_APPLIED)
    except codec.DecodeError:
        return None
    return ev if isinstance(ev, ConfigApplied) else None


async def last_settings(js: JetStreamContext) -> tuple[int, dict[str, Any] | None]:
    """The sequence of the last ``config.applied`` (0: none) and the settings it carries
    (None: the first parts of an apply, or one logged before settings were). One direct get:
    cheap to poll, and all the web may do on the log. :class:`RefusedPart` when the contract
    refuses it: the caller keeps the settings it has."""
    try:
        raw = await js.get_last_msg(streams.EVENTS, subjects.CONFIG_APPLIED, direct=True)
    except NotFoundError:
        return 0, None
    seq = int(raw.seq or 0)
    try:
        ev = codec.decode(raw.data or b"", subjects.CONFIG_APPLIED)
    except codec.DecodeError as exc:
        raise RefusedPart(subjects.CONFIG_APPLIED, seq, str(exc)) from None
    return seq, ev.settings if isinstance(ev, ConfigApplied) else None


async def current_tasks(js: JetStreamContext) -> dict[str, TaskDef]:
    return (await in_force(js)).tasks


async def apply_config(
    js: JetStreamContext, cfg: configuration.Config, applied_by: str
) -> ConfigApplied | None:
    """Publish the diff between the configuration in force (from the log) and ``cfg``, and
    ``cfg``'s settings; returns what was applied (its ``settings`` only when they changed).

    Nothing is published when nothing changed; the message id (file hash and the log
    position it lands on) makes a publish repeated at the same position land once. Each part is
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
    settings = published.public(cfg)
    if configdiff.changes_are_empty(added, changed, removed) and settings == now.settings:
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
    expected = now.last_seq
    parts = carrying(configdiff.split(event), settings)  # TooLarge before anything lands
    # Refused before anything lands, too: every part as its consumers will decode it.
    try:
        encoded = [codec.encode_admitted(part, subjects.CONFIG_APPLIED) for part in parts]
    except codec.DecodeError as exc:
        raise Refused(f"the event log would refuse this configuration: {exc}") from None
    for part, data in zip(parts, encoded, strict=True):
        # The id names the state the part lands on: applying A, B, then A again within the
        # duplicate window is three applies, never one dropped as a duplicate.
        ack = await js.publish(
            subjects.CONFIG_APPLIED,
            data,
            headers={
                "Nats-Msg-Id": f"config.{cfg.digest[:16]}.{expected}.{part.part}",
                "Nats-Expected-Last-Subject-Sequence": str(expected),
            },
        )
        expected = ack.seq
    moved = settings != now.settings and now.last_seq > 0  # the first apply brings them all
    log.info(
        "configuration applied",
        added=len(added),
        changed=len(changed),
        removed=len(removed),
        settings_changed=moved,
    )
    return msgspec.structs.replace(event, settings=settings if moved else None)


def carrying(parts: list[ConfigApplied], settings: dict[str, Any]) -> list[ConfigApplied]:
    """``parts`` with the settings on the last one (whole, once the tasks they name are all in
    force), or on a part of their own after them when that one would grow too large."""
    last = msgspec.structs.replace(parts[-1], settings=settings)
    if len(codec.encode(last)) <= configdiff.PART_BYTES:
        return [*parts[:-1], last]
    n = len(parts) + 1
    alone = msgspec.structs.replace(
        parts[-1], part=n, parts=n, added=[], changed=[], removed=[], settings=settings
    )
    if len(codec.encode(alone)) > configdiff.PART_BYTES:
        raise configdiff.TooLarge(
            f"the settings take {len(codec.encode(alone))} bytes, more than an event may "
            f"({configdiff.PART_BYTES})"
        )
    return [*(msgspec.structs.replace(p, parts=n) for p in parts), alone]


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "?"
    return f"{user}@{socket.gethostname()}"
