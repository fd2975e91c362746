"""Every fact Tocsin records, as msgspec Structs.

Each event is encoded as a JSON object whose ``type`` field names it and whose
``v`` field carries its schema version, so that ``nats stream view`` shows
readable data and a consumer can refuse what it does not understand.

Changing a type in a way old readers cannot decode means a new ``VERSION`` (and
keeping a decoder for the old one), never a silent reinterpretation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from events.fields import (
    MAX_ITEMS,
    SEVERITIES,
    Count,
    Event,
    Facts,
    FarTimestamp,
    Headers,
    HttpStatus,
    IpVersion,
    Millis,
    Name,
    Seconds,
    Severity,
    Small,
    Status,
    Text,
    Timestamp,
    Token,
    Url,
    Value,
)
from events.hosts import MAX_FILESYSTEMS, FilesystemFigures, HostObserved
from events.statuspages import StatusIncidentPosted, StatusSubscriber

__all__ = [
    "MAX_FILESYSTEMS",
    "MAX_ITEMS",
    "SEVERITIES",
    "Count",
    "Event",
    "Facts",
    "FarTimestamp",
    "FilesystemFigures",
    "Headers",
    "HostObserved",
    "HttpStatus",
    "IpVersion",
    "Millis",
    "Name",
    "Seconds",
    "Severity",
    "Small",
    "Status",
    "Text",
    "Timestamp",
    "Token",
    "Url",
    "Value",
]


class RequestData(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What an HTTP request sends besides its method and URL.

    ``data`` is any YAML value, as in Argos: with ``is_json`` it is sent as JSON
    (a string is sent as written, being JSON text already); otherwise a mapping
    is sent as a form and a string as the body.
    """

    data: Any = None
    is_json: bool = False
    headers: Headers = {}


class TaskDef(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One check on one target, as the configuration declares it.

    ``id`` is derived from what makes the task itself (URL, method, request
    data, check, expected value, IP version), so it survives reordering and
    reloads and the task keeps its history.
    """

    id: Token
    group: Token
    domain: Url
    url: Url
    method: Name
    ip_version: IpVersion
    check: Name
    expected: Any
    frequency: Seconds
    recheck_delay: Seconds | None = None
    retry_before_notification: Small = 0
    request_data: RequestData | None = None
    timeout: Seconds = 10.0
    locations: Annotated[list[Token], msgspec.Meta(max_length=256)] = []


class TaskChange(msgspec.Struct, forbid_unknown_fields=True):
    task: TaskDef
    fields: Annotated[list[Name], msgspec.Meta(max_length=64)]


class ConfigApplied(Event, tag="config.applied"):
    """A configuration became the one in force: the diff against the previous one.

    A large diff is split in ``parts`` messages sharing ``revision``; each part
    stands on its own (a reader may fold them one by one).
    """

    revision: Name
    source: Text
    applied_by: Name
    part: Count = 1
    parts: Count = 1
    added: Annotated[list[TaskDef], msgspec.Meta(max_length=MAX_ITEMS)] = []
    changed: Annotated[list[TaskChange], msgspec.Meta(max_length=MAX_ITEMS)] = []
    removed: Annotated[list[Token], msgspec.Meta(max_length=MAX_ITEMS)] = []
    #: Every setting of the configuration beyond its tasks (``general``, the websites' alerting,
    #: ``hosts``, status pages …), whole and with its secrets masked
    #: (``configuration/published.py``), on the last part of an apply. None: a host task set,
    #: or an apply logged before settings were.
    settings: dict[Name, Any] | None = None


class CheckSpec(msgspec.Struct, forbid_unknown_fields=True):
    task: Token
    kind: Name
    expected: Any


class CheckRequested(Event, tag="check.requested"):
    """One HTTP (or TCP/TLS) request to make, with every check judged on its answer."""

    request: Name
    group: Token
    location: Token
    url: Url
    method: Name
    ip_version: IpVersion
    timeout: Seconds
    due: Timestamp
    checks: Annotated[list[CheckSpec], msgspec.Meta(max_length=MAX_ITEMS)]
    request_data: RequestData | None = None
    #: ``request_data`` sealed for the location's agents (base64 NaCl sealed box) when the
    #: deployment has location keys: the log then never shows headers or bodies in clear.
    sealed: Annotated[str, msgspec.Meta(max_length=131072, pattern=r"^[A-Za-z0-9+/=]*$")] | None = (
        None
    )
    #: Who asked for an on-demand run ("check now"): a web user, an API token or a CLI user;
    #: None for the scheduler's own runs.
    requested_by: Name | None = None


class CheckStarted(Event, tag="check.started"):
    """An agent began to run a request. ``delivery`` is JetStream's count of deliveries of it:
    above 1, an earlier agent took it and did not complete it (died, or too slow)."""

    request: Name
    group: Token
    agent: Token
    location: Token
    delivery: Small


class Observation(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What the agent saw. ``error`` set means no usable answer came back."""

    status: HttpStatus | None = None
    headers: Headers = {}
    elapsed_ms: Millis | None = None
    body_bytes: Count | None = None
    error: Text | None = None
    error_kind: Name | None = None
    cert_not_after: FarTimestamp | None = None
    #: What a target beyond HTTP showed, as plain JSON data for the result page: addresses,
    #: DNS answers, round-trip times, the certificate, days left (see docs/monitors.md).
    facts: Facts = {}


class CheckOutcome(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    task: Token
    kind: Name
    status: Status
    detail: Text = ""
    value: Value | None = None


class CheckCompleted(Event, tag="check.completed"):
    request: Name
    group: Token
    agent: Token
    location: Token
    started: Timestamp
    observation: Observation
    outcomes: Annotated[list[CheckOutcome], msgspec.Meta(max_length=MAX_ITEMS)]


class Judgement(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    task: Token
    severity: Severity
    previous: Severity | None
    reason: Text
    failures: Count = 0
    #: Per-location severities behind a verdict combined across several locations.
    locations: Annotated[dict[Token, Severity], msgspec.Meta(max_length=256)] = {}


class TaskJudged(Event, tag="task.judged"):
    """The scheduler's verdict on one completion: a severity for each task of the group.

    ``completion`` is the stream sequence of the judged ``check.completed`` (0
    when no result came back in time); it lets a restarted scheduler skip a
    completion it already judged.
    """

    group: Token
    completion: Count
    next_run: Timestamp
    judgements: Annotated[list[Judgement], msgspec.Meta(max_length=MAX_ITEMS)]
    recheck: bool = False


class AgentHeartbeat(Event, tag="agent.heartbeat"):
    agent: Token
    location: Token
    version: Name
    concurrency: Small
    in_flight: Count
    completed: Count
    started: Timestamp
    stopping: bool = False


class DeadLettered(Event, tag="deadletter"):
    """A message Tocsin could not act on: out of deliveries, or undecodable.

    ``kind`` is ``max_deliver`` (no agent completed the request) or
    ``undecodable`` (the payload is not a valid event); ``excerpt`` holds the
    start of the payload, for an operator to read.
    """

    kind: Literal["max_deliver", "undecodable"]
    stream: Name
    seq: Count
    subject: Text
    consumer: Name
    reason: Text
    excerpt: Text = ""
    group: Token | None = None
    #: The request out of deliveries (``max_deliver``) and how many it had, for its status.
    request: Name | None = None
    deliveries: Small | None = None


class NotificationSent(Event, tag="notification.sent"):
    """Someone was told: one channel, one recipient (never a secret: tokens stay out).

    ``key`` is the notification's idempotency key (``task:seq:channel:n``, or
    ``no_agent:…``); ``kind`` is ``alert``, ``recovery``, ``reminder``,
    ``no_agent``, ``agents_back`` or ``test``.
    """

    key: Text
    kind: Name
    channel: Name
    recipient: Text
    severity: Name
    previous: Name | None = None
    task: Name | None = None
    domain: Url | None = None
    source_seq: Count = 0
    attempt: Count = 1


class NotificationFailed(Event, tag="notification.failed"):
    """A send did not go through; ``final`` is false while it will be tried again."""

    key: Text
    kind: Name
    channel: Name
    recipient: Text
    severity: Name
    error: Text
    attempt: Count
    final: bool = False
    retry_at: Timestamp | None = None
    task: Name | None = None
    domain: Url | None = None
    source_seq: Count = 0


class SilenceAdded(Event, tag="silence.added"):
    """Notifications for ``domain`` (or ``task``; neither: everything) held back in a window."""

    id: Name
    starts: Timestamp
    ends: Timestamp
    reason: Text
    by: Name
    domain: Url | None = None
    task: Name | None = None


class SilenceRemoved(Event, tag="silence.removed"):
    id: Name
    by: Name


PingKind = Literal["success", "start", "fail"]


class MonitorPinged(Event, tag="monitor.pinged"):
    """A job's ping to its heartbeat monitor's secret URL (``/ping/<uuid>[/start|/fail|/N]``).

    The web's ping endpoint records it; the scheduler judges it (and the lack
    of it) like a result. ``exit_code`` is set for ``/ping/<uuid>/<N>`` (0 is
    success); ``body`` is the start of the request body, kept as the run's log.
    """

    group: Token
    task: Token
    kind: PingKind
    exit_code: Annotated[int, msgspec.Meta(ge=0, le=255)] | None = None
    body: Text = ""
    body_bytes: Count = 0
    source: Name = ""
    user_agent: Name = ""


class IncidentAcknowledged(Event, tag="incident.acknowledged"):
    """An operator took charge of a task's failure: reminders and escalation stop until its
    severity changes or it recovers (``at`` after the episode began is what counts)."""

    task: Name
    by: Name
    reason: Text
    #: The severity the operator saw, for the record (the notifier goes by ``at``).
    severity: Name | None = None


AnyEvent = (
    ConfigApplied
    | CheckRequested
    | CheckStarted
    | CheckCompleted
    | TaskJudged
    | AgentHeartbeat
    | DeadLettered
    | NotificationSent
    | NotificationFailed
    | SilenceAdded
    | SilenceRemoved
    | HostObserved
    | MonitorPinged
    | IncidentAcknowledged
    | StatusIncidentPosted
    | StatusSubscriber
)

#: Every event type, by its ``type`` tag. A test fails when a type is missing here.
REGISTRY: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        ConfigApplied,
        CheckRequested,
        CheckStarted,
        CheckCompleted,
        TaskJudged,
        AgentHeartbeat,
        DeadLettered,
        NotificationSent,
        NotificationFailed,
        SilenceAdded,
        SilenceRemoved,
        HostObserved,
        MonitorPinged,
        IncidentAcknowledged,
        StatusIncidentPosted,
        StatusSubscriber,
    )
}
