"""Which events each subject admits, and what their free-form values may hold.

Permissions say who may publish on a subject (an agent only under its own name);
this table says what a message there may claim to be. A body whose type does not
belong to its subject, or whose agent, location or group disagrees with the
subject's tokens, is not an event of the log: ``codec.decode`` refuses it, and
every consumer records it as a dead letter instead of folding it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from events import settings, subjects
from events.fields import INT64
from events.types import (
    AgentHeartbeat,
    CheckCompleted,
    CheckRequested,
    CheckStarted,
    ConfigApplied,
    DeadLettered,
    Event,
    HostObserved,
    IncidentAcknowledged,
    MonitorPinged,
    NotificationFailed,
    NotificationSent,
    SilenceAdded,
    SilenceRemoved,
    StatusIncidentPosted,
    StatusSubscriber,
    TaskJudged,
)


@dataclass(frozen=True)
class Rule:
    """``pattern``: subject tokens after ``tocsin.``, literal ones then ``{field}`` tokens
    the event's ``field`` must equal. ``consumer``: what the ``consumer`` field must be (``{agent}``
    filled from the subject), for records an agent writes under its own name."""

    pattern: tuple[str, ...]
    types: tuple[type[Event], ...]
    consumer: str | None = None
    #: For requests: whether the subject is the one of "check now" (``requested_by`` set).
    on_demand: bool | None = None
    #: Fields whose value the subject fixes (what a writer of that subject may not claim).
    fixed: tuple[tuple[str, object], ...] = ()


RULES: tuple[Rule, ...] = (
    Rule(("config", "applied"), (ConfigApplied,)),
    Rule(("check", "requested", "{location}", "{group}"), (CheckRequested,), on_demand=False),
    Rule(("check", "requested", "{location}", "{group}", "now"), (CheckRequested,), on_demand=True),
    # An agent's subjects carry its name and its location, both bound by its permissions.
    Rule(("check", "started", "{agent}", "{location}", "{group}"), (CheckStarted,)),
    Rule(("check", "completed", "{agent}", "{location}", "{group}"), (CheckCompleted,)),
    # The same without the location (0.1.0): logs written before still fold.
    Rule(("check", "started", "{agent}", "{group}"), (CheckStarted,)),
    Rule(("check", "completed", "{agent}", "{group}"), (CheckCompleted,)),
    Rule(("task", "judged", "{group}"), (TaskJudged,)),
    # History imported from Argos (``tocsin import argos``): folded, never judged nor alerted on.
    Rule(("imported", "check", "requested", "{location}", "{group}"), (CheckRequested,)),
    Rule(("imported", "check", "completed", "{group}"), (CheckCompleted,)),
    Rule(("imported", "task", "judged", "{group}"), (TaskJudged,)),
    Rule(("agent", "heartbeat", "{agent}", "{location}"), (AgentHeartbeat,)),
    Rule(("agent", "heartbeat", "{agent}"), (AgentHeartbeat,)),  # 0.1.0
    # What an agent could not decode, and nothing else: no request's end, no group's record.
    Rule(
        ("deadletter", "agent", "{agent}"),
        (DeadLettered,),
        consumer="agent:{agent}",
        fixed=(("kind", "undecodable"), ("request", None), ("deliveries", None), ("group", None)),
    ),
    Rule(("deadletter", "{kind}"), (DeadLettered,)),
    Rule(("notification", "sent"), (NotificationSent,)),
    Rule(("notification", "failed"), (NotificationFailed,)),
    Rule(("silence", "added"), (SilenceAdded,)),
    Rule(("silence", "removed"), (SilenceRemoved,)),
    # Host observations (docs/hosts.md): an agent's figures, under its own name.
    Rule(("host", "observed", "{agent}", "{location}"), (HostObserved,)),
    Rule(("host", "observed", "{agent}"), (HostObserved,)),  # 0.1.0
    # The scheduler's definitions of a host's tasks.
    Rule(("host", "tasks", "{agent}"), (ConfigApplied,)),
    # Push monitors (heartbeats): the web's ping endpoint records each ping.
    Rule(("monitor", "pinged", "{group}"), (MonitorPinged,)),
    Rule(("incident", "acknowledged"), (IncidentAcknowledged,)),
    # Status pages (issue 14): the page in the subject is the event's page.
    Rule(("status", "incident", "{page}"), (StatusIncidentPosted,)),
    Rule(("status", "subscriber", "{page}"), (StatusSubscriber,)),
)

#: Nesting, size and length limits of free-form values (a check's ``expected``).
MAX_DEPTH = 16
MAX_ITEMS = 1000
MAX_TEXT = 65536


def _literal(rule: Rule) -> tuple[str, ...]:
    """The leading tokens of ``rule`` that are not ``{field}``."""
    n = next((i for i, t in enumerate(rule.pattern) if t.startswith("{")), len(rule.pattern))
    return rule.pattern[:n]


#: The rules by their literal leading tokens and length: a dict lookup or two per message
#: instead of a scan of the table, on every consumer's hot path.
_BY_SHAPE: dict[tuple[tuple[str, ...], int], Rule] = {
    (_literal(r), len(r.pattern)): r for r in RULES
}
_PREFIX_LENGTHS = sorted({len(k) for k, _ in _BY_SHAPE}, reverse=True)
_LITERAL_LENGTH = {r: len(_literal(r)) for r in RULES}
assert len(_BY_SHAPE) == len(RULES), "two rules share their literal tokens and length"


def _rule(tokens: list[str]) -> Rule | None:
    for n in _PREFIX_LENGTHS:
        rule = _BY_SHAPE.get((tuple(tokens[:n]), len(tokens)))
        if rule is not None:
            return rule
    return None


#: Subjects whose parse is kept. A small deployment's subjects all fit; a large one's do not
#: (one per group and agent, seen once a cycle), and its entries cost about 700 bytes each
#: for a parse of 2 µs: 65,536 of them were 40 MB of a scheduler at 100,000 tasks.
PARSED_SUBJECTS = 4096


@functools.lru_cache(maxsize=PARSED_SUBJECTS)
def _parse(subject: str) -> tuple[Rule, tuple[tuple[str, str], ...]] | str:
    """The rule of ``subject`` and its ``(field, token)`` pairs, or why there is none. Cached:
    a small deployment's subjects are seen again and again."""
    tokens = subject.split(".")
    if tokens[0] != "tocsin":
        return f"subject {subject!r} is outside the log"
    rule = _rule(tokens[1:])
    if rule is None:
        return f"subject {subject!r} admits no event type"
    literal = _LITERAL_LENGTH[rule]
    pairs = []
    for want, got in zip(rule.pattern[literal:], tokens[1 + literal :], strict=True):
        if want.startswith("{"):
            pairs.append((want[1:-1], got))
        elif want != got:  # a literal after the fields (``….now``)
            return f"subject {subject!r} admits no event type"
    return rule, tuple(pairs)


def problem(subject: str, event: Event) -> str | None:
    """Why ``event`` may not be published on ``subject``, or None when it may."""
    parsed = _parse(subject)
    if isinstance(parsed, str):
        return parsed
    rule, pairs = parsed
    if not isinstance(event, rule.types):
        kind = type(event).__struct_config__.tag
        return f"type {kind!r} does not match subject {subject!r}"
    for name, got in pairs:
        if name in event.__struct_fields__ and getattr(event, name) != got:
            return f"{name} {getattr(event, name)!r} does not match subject {subject!r}"
    if rule.on_demand is not None:
        asked_by = getattr(event, "requested_by", None)
        if (asked_by is not None) != rule.on_demand:
            return f"requested_by {asked_by!r} does not match subject {subject!r}"
    for name, want in rule.fixed:
        if getattr(event, name) != want:
            return f"{name} {getattr(event, name)!r} is not admitted on subject {subject!r}"
    if rule.consumer is not None:
        want = rule.consumer.format(**dict(pairs))
        if getattr(event, "consumer", None) != want:
            return f"consumer {getattr(event, 'consumer', None)!r} is not {want!r}"
    return None


#: What ``admits`` compares, per subject and event type: the fields the subject fixes as one
#: ``attrgetter`` and the tuple of values they must have, and whether the subject is the one
#: of "check now"; None when ``problem`` finds a problem whatever the fields hold.
_Plan = tuple[Callable[[Any], Any], Any, bool | None]
#: By subject: the event type last planned for it, and its plan.
_plans: dict[str, tuple[type, _Plan | None]] = {}
#: Subjects planned, at most (a log naming more plans them again).
MAX_PLANS = 65_536
#: The types whose subject names their group: admitted on it by comparing it as text.
_PER_GROUP = (CheckRequested, CheckStarted, CheckCompleted, TaskJudged)


def admits(subject: str, event: Event) -> bool:
    """Whether ``problem(subject, event)`` is None, decided by comparing one tuple of fields
    (``problem`` words what is wrong: called only then, on every consumer's hot path)."""
    if isinstance(event, _PER_GROUP) and subject == subject_of(event):
        # Its own subject, which admits it: no plan kept for it. These subjects name a group
        # (and an agent): 50,000 a minute at 100,000 tasks, each seen once a cycle, so plans
        # kept for them (500 bytes each) would be a cache of megabytes that hardly ever hits.
        return True
    cls = type(event)
    planned = _plans.get(subject)
    if planned is not None and planned[0] is cls:
        plan = planned[1]
    else:
        if len(_plans) >= MAX_PLANS:
            _plans.clear()
        plan = _plan(subject, cls)
        _plans[subject] = (cls, plan)
    if plan is None:
        return False
    get, want, on_demand = plan
    if get(event) != want:
        return False
    return on_demand is None or (getattr(event, "requested_by", None) is not None) == on_demand


def _plan(subject: str, cls: type) -> _Plan | None:
    parsed = _parse(subject)
    if isinstance(parsed, str) or not issubclass(cls, parsed[0].types):
        return None
    rule, pairs = parsed
    fields = cls.__struct_fields__  # type: ignore[attr-defined]
    checks = [(name, got) for name, got in pairs if name in fields] + list(rule.fixed)
    if rule.consumer is not None:
        if "consumer" not in fields:
            return None
        checks.append(("consumer", rule.consumer.format(**dict(pairs))))
    names = tuple(name for name, _ in checks)
    # ``attrgetter`` of several names gives a tuple, of one the value, of none nothing.
    get: Callable[[Any], Any] = attrgetter(*names) if names else lambda _: ()
    want = tuple(v for _, v in checks) if len(names) != 1 else checks[0][1]
    return get, want, rule.on_demand


#: A tuple, not ``list | dict``: that expression built a new union at each call, the largest
#: part of checking a completion's (empty) facts.
_CONTAINERS = (list, dict)


def free_form_problem(value: Any, depth: int = 0) -> str | None:
    """Why a free-form JSON value (a check's ``expected``) cannot be stored and compared."""
    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH}"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if -INT64 <= value < INT64 else "integer beyond 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else "number not finite"
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return f"text longer than {MAX_TEXT}"
        return "text with a NUL character" if "\x00" in value else None
    if isinstance(value, _CONTAINERS):
        if len(value) > MAX_ITEMS:
            return f"more than {MAX_ITEMS} items"
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        for item in items:
            found = free_form_problem(item, depth + 1)
            if found:
                return found
        return None
    return f"unexpected value of type {type(value).__name__}"


#: The types whose events carry free-form values (the others have none to check).
FREE_FORM = (CheckRequested, ConfigApplied, CheckCompleted)


def expected_values(event: Event) -> list[Any]:
    """The free-form values an event carries (checked by ``free_form_problem``): checks'
    ``expected`` and request bodies (Argos's ``data``: any YAML value)."""
    if isinstance(event, CheckRequested):
        body = [event.request_data.data] if event.request_data is not None else []
        return [c.expected for c in event.checks] + body
    if isinstance(event, ConfigApplied):
        tasks = [*event.added, *(c.task for c in event.changed)]
        settings = [event.settings] if event.settings is not None else []
        return (
            [t.expected for t in tasks]
            + [t.request_data.data for t in tasks if t.request_data is not None]
            + settings
        )
    if isinstance(event, CheckCompleted):
        return [event.observation.facts]  # what a target beyond HTTP showed
    return []


def content_problem(event: Event) -> str | None:
    """Why the values ``event`` carries cannot be folded, or None: its free-form values, and
    the settings of an apply, checked by the configuration file's rules (events/settings.py)."""
    found = next(filter(None, map(free_form_problem, expected_values(event))), None)
    if found:
        return f"free-form value (expected, request data): {found}"
    if isinstance(event, ConfigApplied) and event.settings is not None:
        return settings.problem(event.settings)
    return None


def subject_of(event: Event) -> str:
    """The subject ``event`` belongs on: the contract makes it a function of the event."""
    if isinstance(event, CheckRequested):
        on_demand = event.requested_by is not None
        return (subjects.requested_now if on_demand else subjects.requested)(
            event.location, event.group
        )
    if isinstance(event, CheckStarted):
        return subjects.started(event.agent, event.location, event.group)
    if isinstance(event, CheckCompleted):
        return subjects.completed(event.agent, event.location, event.group)
    if isinstance(event, TaskJudged):
        return subjects.judged(event.group)
    if isinstance(event, AgentHeartbeat):
        return subjects.heartbeat(event.agent, event.location)
    if isinstance(event, DeadLettered):
        if event.consumer.startswith("agent:"):
            return subjects.agent_deadletter(event.consumer.removeprefix("agent:"))
        return subjects.deadletter(event.kind)
    if isinstance(event, NotificationSent):
        return subjects.notification("sent")
    if isinstance(event, NotificationFailed):
        return subjects.notification("failed")
    if isinstance(event, SilenceAdded):
        return subjects.silence("added")
    if isinstance(event, SilenceRemoved):
        return subjects.silence("removed")
    if isinstance(event, HostObserved):
        return subjects.host_observed(event.agent, event.location)
    if isinstance(event, MonitorPinged):
        return subjects.pinged(event.group)
    if isinstance(event, IncidentAcknowledged):
        return subjects.ACKNOWLEDGED
    if isinstance(event, StatusIncidentPosted):
        return subjects.status("incident", event.page)
    if isinstance(event, StatusSubscriber):
        return subjects.status("subscriber", event.page)
    return subjects.CONFIG_APPLIED
