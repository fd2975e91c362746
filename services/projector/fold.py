"""Folding a batch of events into read-model changes: pure, then written in one go.

``fold`` turns an ordered batch into row sets (what to insert, what to update
and with which latest values); ``writers`` applies them with COPY and set-based
UPDATEs inside the caller's transaction. Keeping the decision pure lets the
tests check folding with tables and keeps the database round trips per batch
constant, whatever the batch size.

An event the fold refuses (a completion or a start about no request of the log at its
location, a completion of a request completed before, or any error folding it) becomes a
dead letter of that event in the same batch: nothing is skipped silently, and a rebuild
refuses exactly what the live projector refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import msgspec

from events import contract
from events.types import (
    AgentHeartbeat,
    AnyEvent,
    CheckCompleted,
    CheckRequested,
    CheckStarted,
    ConfigApplied,
    DeadLettered,
    HostObserved,
    MonitorPinged,
    NotificationFailed,
    NotificationSent,
    SilenceAdded,
    SilenceRemoved,
    StatusIncidentPosted,
    StatusSubscriber,
    TaskDef,
    TaskJudged,
)
from services.projector import hostfold, liveness, pings
from services.projector import requests as request_model
from services.projector.liveness import Heard, ts
from services.projector.requests import Request, answered, asked, completed_before

_TASK = attrgetter("task")


@dataclass
class Undecodable:
    """A message of the log that is not a valid event (recorded, then skipped)."""

    subject: str
    reason: str
    excerpt: str
    at: float


class Refused(Exception):
    """An event that decodes but that the read models must not take (str: why)."""


@dataclass
class Changes:
    last_seq: int = 0
    undecodable: int = 0
    requests: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    request_status: request_model.StatusChanges = field(default_factory=request_model.StatusChanges)
    #: Per task: its last definition in the batch (None: none) and when it was removed after
    #: it (None: it was not). A task added then removed within one batch is still written,
    #: removed, as a batch of one event each would leave it.
    task_defs: dict[str, tuple[TaskDef | None, float | None]] = field(default_factory=dict)
    results: list[tuple[Any, ...]] = field(default_factory=list)
    last_results: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    judgements: dict[str, list[Any]] = field(default_factory=dict)
    severity_changes: list[tuple[Any, ...]] = field(default_factory=list)
    #: (seq, task, at) of each removal by a configuration: a failure it leaves open ends.
    retired: list[tuple[Any, ...]] = field(default_factory=list)
    agents: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    dead_letters: list[tuple[Any, ...]] = field(default_factory=list)
    configs: list[tuple[Any, ...]] = field(default_factory=list)
    notifications: list[tuple[Any, ...]] = field(default_factory=list)
    silences_added: list[tuple[Any, ...]] = field(default_factory=list)
    silences_removed: list[tuple[Any, ...]] = field(default_factory=list)
    hosts: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    host_samples: list[tuple[Any, ...]] = field(default_factory=list)
    status_posts: list[tuple[Any, ...]] = field(default_factory=list)
    #: Last state per (page, e-mail) in the batch.
    status_subscribers: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)

    @property
    def touched_tasks(self) -> int:
        return len(self.task_defs.keys() | self.last_results.keys() | self.judgements.keys())


def fold(
    batch: list[tuple[int, AnyEvent | Heard | Undecodable]],
    known: Mapping[str, Request] | None = None,
) -> Changes:
    """``known``: the requests of the log before this batch that its events name (the ones it
    asks again included: those are not inserted again)."""
    c = Changes()
    requests = dict(known or {})
    for seq, ev in batch:
        if seq > c.last_seq:
            c.last_seq = seq
        if isinstance(ev, Undecodable):
            c.undecodable += 1
            _dead(c, seq, ev.at, "undecodable", ev.subject, ev.reason, ev.excerpt)
            continue
        try:
            (_folds.get(type(ev)) or _fold_of(type(ev)))(c, seq, ev, requests)
        except Exception as exc:  # any event that cannot be folded is recorded, never fatal
            reason = str(exc) if isinstance(exc, Refused) else f"{type(exc).__name__}: {exc}"
            event = ev.event if isinstance(ev, Heard) else ev
            c.undecodable += 1
            _dead(
                c,
                seq,
                event.at,
                "refused",
                contract.subject_of(event),
                f"{event.__struct_config__.tag}: {reason}",
                msgspec.json.encode(event)[:512].decode(errors="replace"),
            )
    return c


def _dead(
    c: Changes, seq: int, at: float, kind: str, subject: str, reason: str, excerpt: str
) -> None:
    c.dead_letters.append(
        (seq, ts(at), kind, "EVENTS", seq, subject, "projector", reason[:1000], excerpt, None)
    )


_Fold = Callable[[Changes, int, Any, dict[str, Request]], None]


def _fold_of(tp: type) -> _Fold:
    """How events of type ``tp`` are folded, found once per type (a mirror of
    ``events.lenient`` is a type of its own): an ``isinstance`` of each type in turn, for
    every event, was a tenth of the fold."""
    fold_it: _Fold = _other
    for cls, how in _FOLDS:
        if issubclass(tp, cls):
            fold_it = how
            break
    _folds[tp] = fold_it
    return fold_it


def _started(c: Changes, seq: int, ev: CheckStarted, requests: dict[str, Request]) -> None:
    # Its request's status and agent: only for a request of the log at its location.
    problem = asked(ev, requests)
    if problem:
        raise Refused(problem)
    request_model.started(c.request_status, seq, ev, requests[ev.request])


def _other(c: Changes, seq: int, ev: AnyEvent, requests: dict[str, Request]) -> None:
    """Fold an event of the rarer types; raise (nothing changed yet) when it cannot be."""
    _one(c, seq, ev)
    request_model.fold(c.request_status, seq, ev, requests)


def _one(c: Changes, seq: int, ev: AnyEvent) -> None:
    if isinstance(ev, ConfigApplied):
        _config(c, seq, ev)
    elif isinstance(ev, DeadLettered):
        c.dead_letters.append(
            (
                seq,
                ts(ev.at),
                ev.kind,
                ev.stream,
                ev.seq,
                ev.subject,
                ev.consumer,
                ev.reason,
                ev.excerpt,
                ev.group,
            )
        )
    elif isinstance(ev, NotificationSent | NotificationFailed):
        _notification(c, seq, ev)
    elif isinstance(ev, SilenceAdded):
        c.silences_added.append(
            (
                ev.id,
                seq,
                ts(ev.at),
                ts(ev.starts),
                ts(ev.ends),
                ev.domain,
                ev.task,
                ev.reason,
                ev.by,
            )
        )
    elif isinstance(ev, SilenceRemoved):
        c.silences_removed.append((ev.id, ts(ev.at), ev.by))
    elif isinstance(ev, AgentHeartbeat | HostObserved):
        # Of a batch made without the log's times (a seeding): received when it says.
        _heard(c, seq, Heard(ev, ev.at))
    elif isinstance(ev, MonitorPinged):
        result, c.last_results[ev.task] = pings.rows(seq, ev)
        c.results.append(result)
    elif isinstance(ev, StatusIncidentPosted):
        c.status_posts.append(
            (
                seq,
                ev.id,
                ev.page,
                ts(ev.at),
                ev.phase,
                ev.message,
                ev.by,
                ev.title,
                msgspec.json.encode(ev.components).decode(),
            )
        )
    elif isinstance(ev, StatusSubscriber):
        c.status_subscribers[(ev.page, ev.email)] = (
            ev.page,
            ev.email,
            seq,
            ts(ev.at),
            ev.state,
            ev.token,
        )


def _heard(c: Changes, seq: int, h: Heard, requests: object = None) -> None:
    """A heartbeat or a host's figures: the row of the latest taken (an older one landing
    after a newer one leaves it, as the table's upsert does)."""
    ev, taken = h.event, ts(h.taken)
    if isinstance(ev, AgentHeartbeat):
        seen = c.agents.get(ev.agent)
        if seen is None or liveness.taken(seen, *liveness.AGENT_TIMES) <= taken:
            c.agents[ev.agent] = liveness.agent_row(ev, h.received)
        return
    c.host_samples.append(hostfold.sample_row(seq, ev, h.taken))
    before = c.hosts.get(ev.agent)
    if before is None or liveness.taken(before, *hostfold.HOST_TIMES) <= taken:
        c.hosts[ev.agent] = hostfold.host_row(seq, ev, h.received)


def _requested(c: Changes, seq: int, ev: CheckRequested, requests: dict[str, Request]) -> None:
    # Its status is the row's insert: nothing for ``request_model``.
    if ev.request in requests:  # asked before (table, batch): the first of an id is the one
        return
    # Kept so that a completion can be checked against the request it claims to answer.
    tasks = frozenset(map(_TASK, ev.checks))
    requests[ev.request] = Request(ev.location, ev.group, tasks)
    c.requests[ev.request] = (
        ev.request,
        ev.location,
        ev.group,
        sorted(tasks),
        seq,
        ts(ev.at),
        ts(ev.due),
        ev.requested_by,
    )


def _completed(c: Changes, seq: int, ev: CheckCompleted, requests: dict[str, Request]) -> None:
    problem = answered(ev, requests) or completed_before(ev, requests)
    if problem:
        raise Refused(problem)
    # The first completion of a request is its result; a later one is refused (above).
    req = requests[ev.request]
    requests[ev.request] = Request(req.location, req.group, req.tasks, (seq, ev.agent))
    obs = ev.observation
    obs_json = msgspec.json.encode(obs).decode()
    at = ts(ev.at)
    # One result per task and completion: the contract admits no task listed twice
    # (events/keyed.py), so every reader takes the same outcome of it.
    for o in ev.outcomes:
        c.results.append(
            (
                seq,
                o.task,
                ev.group,
                ev.agent,
                ev.location,
                ev.request,
                at,
                o.status,
                o.detail,
                o.value,
                obs.status,
                obs.elapsed_ms,
                obs.error,
                obs_json,
            )
        )
        c.last_results[o.task] = (
            o.task,
            seq,
            o.status,
            o.detail,
            at,
            obs.status,
            obs.elapsed_ms,
            ev.agent,
        )
    request_model.completed(c.request_status, seq, ev, at)


def _judged(c: Changes, seq: int, ev: TaskJudged, requests: dict[str, Request]) -> None:
    at, next_run = ts(ev.at), ts(ev.next_run)
    if ev.completion:  # the request that completion answered is judged
        c.request_status.judged.append((ev.completion, at))
    for j in ev.judgements:  # each task once (events/keyed.py)
        prev = c.judgements.get(j.task)
        changed_at = prev[5] if prev else None
        if j.severity != j.previous:
            changed_at = at
            c.severity_changes.append((seq, j.task, at, j.previous, j.severity, j.reason))
        c.judgements[j.task] = [
            j.task,
            j.severity,
            j.reason,
            j.failures,
            next_run,
            changed_at,
            at,
        ]


def _config(c: Changes, seq: int, ev: ConfigApplied) -> None:
    at = ts(ev.at)
    for t in ev.added:
        c.task_defs[t.id] = (t, None)
    for ch in ev.changed:
        c.task_defs[ch.task.id] = (ch.task, None)
    for tid in ev.removed:
        c.task_defs[tid] = (c.task_defs.get(tid, (None, None))[0], ev.at)
        c.retired.append((seq, tid, at))
    diff = msgspec.json.encode(
        {"added": ev.added, "changed": ev.changed, "removed": ev.removed}
    ).decode()
    c.configs.append(
        (
            seq,
            at,
            ev.revision,
            ev.source,
            ev.applied_by,
            ev.part,
            ev.parts,
            len(ev.added),
            len(ev.changed),
            len(ev.removed),
            diff,
        )
    )


def _notification(c: Changes, seq: int, ev: NotificationSent | NotificationFailed) -> None:
    if isinstance(ev, NotificationSent):
        outcome, previous, error, final = "sent", ev.previous, None, False
    else:
        outcome, previous, error, final = "failed", None, ev.error, ev.final
    c.notifications.append(
        (
            seq,
            ts(ev.at),
            outcome,
            ev.key,
            ev.kind,
            ev.channel,
            ev.recipient,
            ev.severity,
            previous,
            ev.task,
            ev.domain,
            ev.source_seq,
            ev.attempt,
            error,
            final,
        )
    )


#: The types folded by a function of their own, most frequent first (the others: ``_other``).
_FOLDS: tuple[tuple[type, _Fold], ...] = (
    (CheckRequested, _requested),
    (CheckCompleted, _completed),
    (CheckStarted, _started),
    (TaskJudged, _judged),
    (Heard, _heard),
)
#: ``_fold_of`` by type, as found.
_folds: dict[type, _Fold] = {}
