"""Every fact Tocsin records, as msgspec Structs.

Each event is encoded as a JSON object whose ``type`` field names it and whose
``v`` field carries its schema version, so that ``nats stream view`` shows
readable data and a consumer can refuse what it does not understand.

Changing a type in a way old readers cannot decode means a new ``VERSION`` (and
keeping a decoder for the old one), never a silent reinterpretation.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

# Bounds of every field: what a decoder admits is exactly what a reader can fold. A value
# outside them (an infinite number, a date in the year 30000, a NUL byte PostgreSQL refuses,
# a list of a million items) is a broken or hostile writer, and the event a dead letter.
_NO_NUL = r"^[^\x00]*$"
#: 2000-01-01 .. 2100-01-01 (Unix seconds): when a fact of Tocsin can have happened.
Timestamp = Annotated[float, msgspec.Meta(ge=946_684_800.0, le=4_102_444_800.0)]
#: A certificate may legitimately run until 9999.
FarTimestamp = Annotated[float, msgspec.Meta(ge=0.0, le=253_402_300_799.0)]
#: A duration or a delay, in seconds: up to a year.
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=366 * 86400.0)]
Millis = Annotated[float, msgspec.Meta(ge=0.0, le=1e10)]
#: A finite measured value (a certificate's remaining seconds may be negative).
Value = Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)]
#: Counters and stream sequences: exact in a float and in PostgreSQL's bigint.
Count = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Small = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
HttpStatus = Annotated[int, msgspec.Meta(ge=0, le=999)]
IpVersion = Annotated[int, msgspec.Meta(ge=4, le=6)]
#: A name that is also a subject token (agent, location, group, task): see events.subjects.
Token = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Name = Annotated[str, msgspec.Meta(max_length=256, pattern=_NO_NUL)]
Url = Annotated[str, msgspec.Meta(max_length=8192, pattern=_NO_NUL)]
Text = Annotated[str, msgspec.Meta(max_length=65536, pattern=_NO_NUL)]
Headers = Annotated[dict[Name, Text], msgspec.Meta(max_length=256)]
MAX_ITEMS = 10_000

Severity = Literal["ok", "warning", "critical", "unknown"]
Status = Literal["success", "failure", "error"]
SEVERITIES: tuple[Severity, ...] = ("ok", "warning", "critical", "unknown")


class Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every event: ``at`` is when the fact happened (Unix seconds)."""

    VERSION: ClassVar[int] = 1
    v: int = 1
    at: Timestamp


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


class Observation(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What the agent saw. ``error`` set means no usable answer came back."""

    status: HttpStatus | None = None
    headers: Headers = {}
    elapsed_ms: Millis | None = None
    body_bytes: Count | None = None
    error: Text | None = None
    error_kind: Name | None = None
    cert_not_after: FarTimestamp | None = None


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


# --- Host observations (issue 17) -------------------------------------------------------
# Every field bounded: an agent is a remote, less trusted writer, and what a decoder admits
# is what the projector folds and the web shows.
_HostToken = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,62}$")]
_HostText = Annotated[str, msgspec.Meta(max_length=4096, pattern=r"^[^\x00]*$")]
_Percent = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
_Bytes = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
_Load = Annotated[float, msgspec.Meta(ge=0.0, le=1e6)]
_HostSeconds = Annotated[float, msgspec.Meta(gt=0.0, le=86400.0)]
_Epoch = Annotated[float, msgspec.Meta(ge=0.0, le=4_102_444_800.0)]
MAX_FILESYSTEMS = 256


class FilesystemFigures(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One mounted filesystem: sizes as the node exporter reports them (``avail`` is what an
    unprivileged user can still write, ``free`` includes the blocks reserved for root)."""

    mount: _HostText
    fstype: _HostText
    device: _HostText
    size_bytes: _Bytes
    free_bytes: _Bytes
    avail_bytes: _Bytes
    used_percent: _Percent
    files: _Bytes = 0
    files_free: _Bytes = 0
    #: None for a filesystem without an inode table (files == 0).
    inodes_percent: _Percent | None = None


class HostObserved(Event, tag="host.observed"):
    """What an agent saw of the machine it runs on, every ``interval`` seconds.

    The agent name is at most 62 characters so that its task group ``h-<agent>`` is still
    one subject token.
    """

    agent: _HostToken
    location: _HostToken
    hostname: _HostText
    interval: _HostSeconds
    cores: Annotated[int, msgspec.Meta(ge=1, le=65536)]
    cpu_percent: _Percent
    load1: _Load
    load5: _Load
    load15: _Load
    memory_total_bytes: _Bytes
    memory_available_bytes: _Bytes
    memory_percent: _Percent
    swap_total_bytes: _Bytes
    swap_free_bytes: _Bytes
    swap_percent: _Percent
    boot_time: _Epoch
    filesystems: Annotated[list[FilesystemFigures], msgspec.Meta(max_length=MAX_FILESYSTEMS)] = []


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
    | CheckCompleted
    | TaskJudged
    | AgentHeartbeat
    | DeadLettered
    | NotificationSent
    | NotificationFailed
    | SilenceAdded
    | SilenceRemoved
    | HostObserved
    | IncidentAcknowledged
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
        HostObserved,
        IncidentAcknowledged,
    )
}
