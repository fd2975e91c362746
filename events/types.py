"""Every fact Tocsin records, as msgspec Structs.

Each event is encoded as a JSON object whose ``type`` field names it and whose
``v`` field carries its schema version, so that ``nats stream view`` shows
readable data and a consumer can refuse what it does not understand.

Changing a type in a way old readers cannot decode means a new ``VERSION`` (and
keeping a decoder for the old one), never a silent reinterpretation.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

Severity = Literal["ok", "warning", "critical", "unknown"]
Status = Literal["success", "failure", "error"]
SEVERITIES: tuple[Severity, ...] = ("ok", "warning", "critical", "unknown")


class Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every event: ``at`` is when the fact happened (Unix seconds)."""

    VERSION: ClassVar[int] = 1
    v: int = 1
    at: float


class RequestData(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What an HTTP request sends besides its method and URL."""

    data: str | None = None
    is_json: bool = False
    headers: dict[str, str] = {}


class TaskDef(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One check on one target, as the configuration declares it.

    ``id`` is derived from what makes the task itself (URL, method, request
    data, check, expected value, IP version), so it survives reordering and
    reloads and the task keeps its history.
    """

    id: str
    group: str
    domain: str
    url: str
    method: str
    ip_version: int
    check: str
    expected: Any
    frequency: float
    recheck_delay: float | None = None
    retry_before_notification: int = 0
    request_data: RequestData | None = None
    timeout: float = 10.0
    locations: list[str] = []


class TaskChange(msgspec.Struct, forbid_unknown_fields=True):
    task: TaskDef
    fields: list[str]


class ConfigApplied(Event, tag="config.applied"):
    """A configuration became the one in force: the diff against the previous one.

    A large diff is split in ``parts`` messages sharing ``revision``; each part
    stands on its own (a reader may fold them one by one).
    """

    revision: str
    source: str
    applied_by: str
    part: int = 1
    parts: int = 1
    added: list[TaskDef] = []
    changed: list[TaskChange] = []
    removed: list[str] = []


class CheckSpec(msgspec.Struct, forbid_unknown_fields=True):
    task: str
    kind: str
    expected: Any


class CheckRequested(Event, tag="check.requested"):
    """One HTTP (or TCP/TLS) request to make, with every check judged on its answer."""

    request: str
    group: str
    location: str
    url: str
    method: str
    ip_version: int
    timeout: float
    due: float
    checks: list[CheckSpec]
    request_data: RequestData | None = None
    #: ``request_data`` sealed for the location's agents (base64 NaCl sealed box) when the
    #: deployment has location keys: the log then never shows headers or bodies in clear.
    sealed: str | None = None


class Observation(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What the agent saw. ``error`` set means no usable answer came back."""

    status: int | None = None
    headers: dict[str, str] = {}
    elapsed_ms: float | None = None
    body_bytes: int | None = None
    error: str | None = None
    error_kind: str | None = None
    cert_not_after: float | None = None


class CheckOutcome(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    task: str
    kind: str
    status: Status
    detail: str = ""
    value: float | None = None


class CheckCompleted(Event, tag="check.completed"):
    request: str
    group: str
    agent: str
    location: str
    started: float
    observation: Observation
    outcomes: list[CheckOutcome]


class Judgement(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    task: str
    severity: Severity
    previous: Severity | None
    reason: str
    failures: int = 0
    #: Per-location severities behind a verdict combined across several locations.
    locations: dict[str, Severity] = {}


class TaskJudged(Event, tag="task.judged"):
    """The scheduler's verdict on one completion: a severity for each task of the group.

    ``completion`` is the stream sequence of the judged ``check.completed`` (0
    when no result came back in time); it lets a restarted scheduler skip a
    completion it already judged.
    """

    group: str
    completion: int
    next_run: float
    judgements: list[Judgement]
    recheck: bool = False


class AgentHeartbeat(Event, tag="agent.heartbeat"):
    agent: str
    location: str
    version: str
    concurrency: int
    in_flight: int
    completed: int
    started: float
    stopping: bool = False


class DeadLettered(Event, tag="deadletter"):
    """A message Tocsin could not act on: out of deliveries, or undecodable.

    ``kind`` is ``max_deliver`` (no agent completed the request) or
    ``undecodable`` (the payload is not a valid event); ``excerpt`` holds the
    start of the payload, for an operator to read.
    """

    kind: Literal["max_deliver", "undecodable"]
    stream: str
    seq: int
    subject: str
    consumer: str
    reason: str
    excerpt: str = ""
    group: str | None = None


class NotificationSent(Event, tag="notification.sent"):
    """Someone was told: one channel, one recipient (never a secret: tokens stay out).

    ``key`` is the notification's idempotency key (``task:seq:channel:n``, or
    ``no_agent:…``); ``kind`` is ``alert``, ``recovery``, ``reminder``,
    ``no_agent``, ``agents_back`` or ``test``.
    """

    key: str
    kind: str
    channel: str
    recipient: str
    severity: str
    previous: str | None = None
    task: str | None = None
    domain: str | None = None
    source_seq: int = 0
    attempt: int = 1


class NotificationFailed(Event, tag="notification.failed"):
    """A send did not go through; ``final`` is false while it will be tried again."""

    key: str
    kind: str
    channel: str
    recipient: str
    severity: str
    error: str
    attempt: int
    final: bool = False
    retry_at: float | None = None
    task: str | None = None
    domain: str | None = None
    source_seq: int = 0


class SilenceAdded(Event, tag="silence.added"):
    """Notifications for ``domain`` (or ``task``; neither: everything) held back in a window."""

    id: str
    starts: float
    ends: float
    reason: str
    by: str
    domain: str | None = None
    task: str | None = None


class SilenceRemoved(Event, tag="silence.removed"):
    id: str
    by: str


AnyEvent = (
    ConfigApplied
    | CheckRequested
    | CheckCompleted
    | TaskJudged
    | AgentHeartbeat
    | DeadLettered
    | NotificationSent
    | NotificationFailed
    | SilenceAdded
    | SilenceRemoved
)

#: Every event type, by its ``type`` tag. A test fails when a type is missing here.
REGISTRY: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        ConfigApplied,
        CheckRequested,
        CheckCompleted,
        TaskJudged,
        AgentHeartbeat,
        DeadLettered,
        NotificationSent,
        NotificationFailed,
        SilenceAdded,
        SilenceRemoved,
    )
}
