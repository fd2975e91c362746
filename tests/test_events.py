"""The event contract: every type round-trips, the registry is complete, decoding is strict."""

from __future__ import annotations

import msgspec
import pytest

from events import codec, contract
from events.types import (
    REGISTRY,
    AgentHeartbeat,
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    CheckSpec,
    CheckStarted,
    ConfigApplied,
    DeadLettered,
    Event,
    FilesystemFigures,
    HostObserved,
    IncidentAcknowledged,
    Judgement,
    MonitorPinged,
    NotificationFailed,
    NotificationSent,
    Observation,
    RequestData,
    SilenceAdded,
    SilenceRemoved,
    StatusIncidentPosted,
    StatusSubscriber,
    TaskDef,
    TaskJudged,
)

TASK = TaskDef(
    id="t1",
    group="g1",
    domain="example.org",
    url="https://example.org/",
    method="GET",
    ip_version=4,
    check="status-is",
    expected=200,
    frequency=60.0,
    request_data=RequestData(data="{}", is_json=True, headers={"X": "y"}),
)

#: Any time in the range the contract admits (2000..2100).
T = 1_700_000_000.0

SAMPLES: list[Event] = [
    ConfigApplied(at=T + 1.0, revision="abc", source="c.yaml", applied_by="me", added=[TASK]),
    CheckRequested(
        at=T + 1.0,
        request="g1.default.1000",
        group="g1",
        location="default",
        url="https://example.org/",
        method="GET",
        ip_version=4,
        timeout=5.0,
        due=T + 1.0,
        checks=[CheckSpec("t1", "status-is", 200)],
    ),
    CheckRequested(
        at=T + 1.0,
        request="g1.default.now3",
        group="g1",
        location="default",
        url="https://example.org/",
        method="GET",
        ip_version=4,
        timeout=5.0,
        due=T + 1.0,
        checks=[CheckSpec("t1", "status-is", 200)],
        requested_by="user:alice",
    ),
    CheckStarted(
        at=T + 1.5,
        request="g1.default.1000",
        group="g1",
        agent="a1",
        location="default",
        delivery=2,
    ),
    CheckCompleted(
        at=T + 2.0,
        request="g1.default.1000",
        group="g1",
        agent="a1",
        location="default",
        started=T + 1.5,
        observation=Observation(status=200, elapsed_ms=12.5),
        outcomes=[CheckOutcome("t1", "status-is", "success", "status 200")],
    ),
    TaskJudged(
        at=T + 2.0,
        group="g1",
        completion=7,
        next_run=T + 62.0,
        judgements=[Judgement("t1", "ok", None, "status 200")],
    ),
    AgentHeartbeat(
        at=T + 3.0,
        agent="a1",
        location="default",
        version="0.1.0",
        concurrency=10,
        in_flight=1,
        completed=5,
        started=T + 0.5,
    ),
    DeadLettered(
        at=T + 4.0,
        kind="undecodable",
        stream="EVENTS",
        seq=3,
        subject="tocsin.x",
        consumer="projector",
        reason="not JSON",
    ),
    NotificationSent(
        at=T + 5.0,
        key="t1:7:mail:0",
        kind="alert",
        channel="mail",
        recipient="ops@example.org",
        severity="critical",
        previous="ok",
        task="t1",
    ),
    NotificationFailed(
        at=T + 5.0,
        key="t1:7:gotify:0",
        kind="alert",
        channel="gotify",
        recipient="https://gotify.example.org (token 1)",
        severity="critical",
        error="HTTP 500",
        attempt=2,
        retry_at=T + 65.0,
    ),
    SilenceAdded(
        at=T + 6.0,
        id="s1",
        starts=T + 6.0,
        ends=T + 7206.0,
        reason="upgrade",
        by="me",
        domain="example.org",
    ),
    SilenceRemoved(at=T + 7.0, id="s1", by="me"),
    HostObserved(
        at=T + 8.0,
        agent="a1",
        location="default",
        hostname="web1.example.org",
        interval=30.0,
        cores=4,
        cpu_percent=12.5,
        load1=0.5,
        load5=0.4,
        load15=0.3,
        memory_total_bytes=8 << 30,
        memory_available_bytes=4 << 30,
        memory_percent=50.0,
        swap_total_bytes=0,
        swap_free_bytes=0,
        swap_percent=0.0,
        boot_time=T - 86400.0,
        filesystems=[
            FilesystemFigures("/", "ext4", "/dev/vda", 100, 20, 15, 80.0, 1000, 900, 10.0)
        ],
    ),
    MonitorPinged(
        at=T + 8.0, group="g", task="t", kind="fail", exit_code=2, body="disk full", body_bytes=9
    ),
    IncidentAcknowledged(at=T + 8.0, task="t1", by="alice", reason="on it", severity="critical"),
    StatusIncidentPosted(
        at=T + 8.0,
        id="i1",
        page="public",
        phase="investigating",
        message="Slow pages",
        by="ops",
        title="Slowness",
        components=["API"],
    ),
    StatusSubscriber(
        at=T + 9.0, page="public", email="a@example.org", state="requested", token="t"
    ),
]


def _all_subclasses(cls: type) -> set[type]:
    """Every event type (``events.lenient``'s mirrors of them aside: the same types, decoded
    without patterns)."""
    out = set()
    for sub in cls.__subclasses__():
        if sub.__module__ != "events.lenient":
            out |= {sub} | _all_subclasses(sub)
    return out


def test_every_event_type_is_registered_and_sampled():
    """A new event type must be in the registry and get a sample here."""
    assert set(REGISTRY.values()) == _all_subclasses(Event)
    assert {type(s) for s in SAMPLES} == set(REGISTRY.values())


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip(event: Event):
    data = codec.encode(event)
    assert msgspec.json.decode(data)["type"] == event.__struct_config__.tag
    assert codec.decode(data, subject_of(event)) == event


subject_of = contract.subject_of


@pytest.mark.parametrize(
    "cls", sorted(REGISTRY.values(), key=lambda c: c.__name__), ids=lambda c: c.__name__
)
def test_every_registered_type_decodes_by_its_tag(cls: type[Event]):
    tag = cls.__struct_config__.tag
    with pytest.raises(codec.DecodeError) as err:
        codec.decode(b'{"type": "%s", "v": 1}' % tag.encode(), "tocsin.test")
    assert "tocsin.test" in str(err.value) and tag in str(err.value)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(b"\x00\x01", "not a JSON event", id="not-json"),
        pytest.param(b"[1, 2]", "event without a type", id="json-array"),
        pytest.param(
            b'{"type": "bogus", "v": 1, "at": 1}', "unknown event type 'bogus'", id="unknown-type"
        ),
        pytest.param(
            b'{"type": "agent.heartbeat", "v": 2, "at": 1, "agent": "a", '
            b'"location": "l", "version": "x", "concurrency": 1, "in_flight": 0, '
            b'"completed": 0, "started": 0}',
            "schema version 2",
            id="wrong-version",
        ),
        pytest.param(
            b'{"type": "agent.heartbeat", "v": 1, "at": "soon"}',
            "agent.heartbeat: Expected `float`",
            id="wrong-field-type",
        ),
        pytest.param(
            b'{"type": "deadletter", "v": 1, "at": 1, "kind": "x", "stream": "S", '
            b'"seq": 1, "subject": "s", "consumer": "c", "reason": "r", "extra": 1}',
            "deadletter",
            id="unknown-field",
        ),
        pytest.param(b"x" * (codec.MAX_EVENT_BYTES + 1), "exceeds", id="oversized"),
        # A number no float holds made the whole payload unreadable as plain JSON: the reason
        # said "event without a type" although the type is there.
        pytest.param(
            b'{"type": "agent.heartbeat", "v": 1, "at": 1700000000, "agent": "local", '
            b'"location": "default", "version": "x", "concurrency": 1, "in_flight": 0, '
            b'"completed": 1e400, "started": 1700000000}',
            "agent.heartbeat: Number out of range - at `$.completed`",
            id="number-out-of-range-names-type-and-field",
        ),
        pytest.param(
            b'{"type": "agent.heartbeat", "v": 1e400, "at": 1}',
            "agent.heartbeat: Number out of range - at `$.v`",
            id="version-out-of-range-names-type",
        ),
        pytest.param(
            b'{"type": "agent.heartbeat", "v": 2, "at": 1e400}',
            "agent.heartbeat: schema version 2",
            id="other-version-said-despite-a-bad-number",
        ),
    ],
)
def test_decoding_is_strict(payload: bytes, message: str):
    with pytest.raises(codec.DecodeError) as err:
        codec.decode(payload, "tocsin.subject")
    assert message in str(err.value)
    assert str(err.value).startswith("tocsin.subject: ")


def test_events_written_before_check_now_still_decode():
    """``requested_by`` and ``request`` were added with defaults: old payloads keep decoding."""
    old_request = msgspec.json.encode(
        {
            "type": "check.requested",
            "v": 1,
            "at": T + 1.0,
            "request": "g1.default.1000",
            "group": "g1",
            "location": "default",
            "url": "https://example.org/",
            "method": "GET",
            "ip_version": 4,
            "timeout": 5.0,
            "due": T + 1.0,
            "checks": [{"task": "t1", "kind": "status-is", "expected": 200}],
        }
    )
    ev = codec.decode(old_request, "tocsin.check.requested.default.g1")
    assert isinstance(ev, CheckRequested) and ev.requested_by is None
    old_dead = (
        b'{"type": "deadletter", "v": 1, "at": 1700000000, "kind": "max_deliver", '
        b'"stream": "WORK", "seq": 1, "subject": "s", "consumer": "c", "reason": "r"}'
    )
    dead = codec.decode(old_dead, "tocsin.deadletter.max_deliver")
    assert isinstance(dead, DeadLettered) and dead.request is None
