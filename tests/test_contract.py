"""The subject contract and field bounds: decode refuses with DecodeError, and nothing else,
whatever a publisher sends; what it accepts, the projector can fold."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import codec, contract
from events.types import CheckCompleted, Event
from services.projector.fold import fold
from tests.test_events import SAMPLES, subject_of

#: One subject of each rule of the contract, as a writer would use it.
RULE_SUBJECTS = sorted({subject_of(e) for e in SAMPLES} | {"tocsin.deadletter.agent.a1"})


def _raw(event: Event) -> dict[str, Any]:
    return msgspec.json.decode(codec.encode(event))


def test_the_two_crashing_messages_of_the_issue_are_refused():
    """Finding 2: these decoded into a crash (ValidationError outside DecodeError, then an
    OverflowError in the fold)."""
    with pytest.raises(codec.DecodeError):
        codec.decode(b'{"type":"check.completed","v":1,"at":1e999}', "tocsin.check.completed.a.g")
    beat = next(e for e in SAMPLES if type(e).__name__ == "AgentHeartbeat")
    with pytest.raises(codec.DecodeError, match="started"):
        codec.decode(msgspec.json.encode({**_raw(beat), "started": 1e300}), subject_of(beat))


@pytest.mark.parametrize(
    ("event", "subject"),
    [
        (e, s)
        for e, s in itertools.product(SAMPLES, RULE_SUBJECTS)
        if s != subject_of(e)
        and not (s.startswith("tocsin.deadletter") and "Dead" in type(e).__name__)
    ],
    ids=str,
)
def test_a_type_on_another_types_subject_is_refused(event: Event, subject: str):
    """Finding 1: a task.judged or config.applied body on an agent's completion subject."""
    with pytest.raises(codec.DecodeError, match="does not match subject"):
        codec.decode(codec.encode(event), subject)


@pytest.mark.parametrize(
    ("kind", "subject", "field", "value"),
    [
        ("CheckCompleted", "tocsin.check.completed.a1.default.g1", "agent", "someone-else"),
        ("CheckCompleted", "tocsin.check.completed.a1.default.g1", "group", "other"),
        # An agent of one location answering a request of another (docs/security.md).
        ("CheckCompleted", "tocsin.check.completed.a1.default.g1", "location", "elsewhere"),
        ("CheckStarted", "tocsin.check.started.a1.default.g1", "location", "elsewhere"),
        ("CheckRequested", "tocsin.check.requested.default.g1", "location", "elsewhere"),
        ("CheckRequested", "tocsin.check.requested.default.g1", "group", "other"),
        ("TaskJudged", "tocsin.task.judged.g1", "group", "other"),
        ("AgentHeartbeat", "tocsin.agent.heartbeat.a1.default", "agent", "fake-agent"),
        # A heartbeat or host figures speak for the agent of the subject, at its location.
        ("AgentHeartbeat", "tocsin.agent.heartbeat.a1.default", "location", "elsewhere"),
        ("HostObserved", "tocsin.host.observed.a1.default", "location", "elsewhere"),
        ("HostObserved", "tocsin.host.observed.a1.default", "agent", "a2"),
    ],
)
def test_fields_repeating_the_subject_must_agree(kind: str, subject: str, field: str, value: str):
    event = next(e for e in SAMPLES if type(e).__name__ == kind)
    codec.decode(codec.encode(event), subject)  # the genuine one passes
    forged = msgspec.json.encode({**_raw(event), field: value})
    with pytest.raises(codec.DecodeError, match=f"{field} .* does not match subject"):
        codec.decode(forged, subject)


def test_an_agent_records_dead_letters_only_under_its_own_name():
    dead = next(e for e in SAMPLES if type(e).__name__ == "DeadLettered")
    own = msgspec.json.encode({**_raw(dead), "consumer": "agent:a1"})
    codec.decode(own, "tocsin.deadletter.agent.a1")
    with pytest.raises(codec.DecodeError, match="consumer"):
        codec.decode(own, "tocsin.deadletter.agent.a2")


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "max_deliver"), ("request", "g1.default.1000"), ("deliveries", 5), ("group", "g1")],
)
def test_an_agents_dead_letter_says_only_what_it_could_not_decode(field: str, value: object):
    """On its own subject an agent records a message it could not decode, nothing more: a
    ``max_deliver`` naming a request ended that request's life on its page (any location's)."""
    dead = next(e for e in SAMPLES if type(e).__name__ == "DeadLettered")
    own = {**_raw(dead), "consumer": "agent:a1"}
    codec.decode(msgspec.json.encode(own), "tocsin.deadletter.agent.a1")
    with pytest.raises(codec.DecodeError, match=field):
        codec.decode(msgspec.json.encode({**own, field: value}), "tocsin.deadletter.agent.a1")


def test_a_dead_letters_kind_is_the_one_of_its_subject():
    dead = next(e for e in SAMPLES if type(e).__name__ == "DeadLettered")
    codec.decode(codec.encode(dead), "tocsin.deadletter.undecodable")
    with pytest.raises(codec.DecodeError, match="kind"):
        codec.decode(codec.encode(dead), "tocsin.deadletter.max_deliver")


def test_subjects_outside_the_table_admit_nothing():
    event = SAMPLES[0]
    for subject in ("tocsin.config.applied.x", "tocsin.check", "other.config.applied"):
        with pytest.raises(codec.DecodeError):
            codec.decode(codec.encode(event), subject)


def test_what_decoding_keeps_per_subject_is_bounded():
    """A large deployment has a subject per group and agent; what the decoder keeps of them
    (its parse of each) stays bounded, not one entry per group (40 MB at 100,000 tasks)."""
    requested = next(e for e in SAMPLES if type(e).__name__ == "CheckRequested")
    for n in range(contract.PARSED_SUBJECTS + 1000):
        group = f"g{n}"
        event = msgspec.structs.replace(requested, group=group, request=f"{group}.default.1000")
        codec.decode(codec.encode(event), f"tocsin.check.requested.default.{group}")
    assert contract._parse.cache_info().currsize <= 4096


HOSTILE_NUMBERS = st.sampled_from(
    [1e999, -1e999, 1e308, -1e308, 2**63, 2**64, -(2**63) - 1, 2**53 + 1, -1, 0, 1e-320]
)
HOSTILE_TEXT = st.one_of(
    st.sampled_from(["", "\x00", "a\x00b", "x" * 70_000, "é" * 10, "a.b", "*", ">"]),
    st.text(max_size=20),
)
JSON = st.recursive(
    st.none() | st.booleans() | HOSTILE_NUMBERS | st.floats() | st.integers() | HOSTILE_TEXT,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def _mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    event = draw(st.sampled_from(SAMPLES))
    raw = _raw(event)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "drop", "extra", "nest"]))
        key = draw(st.sampled_from(sorted(raw)))
        if action == "set":
            raw[key] = draw(JSON)
        elif action == "drop":
            raw.pop(key, None)
        elif action == "extra":
            raw[draw(st.text(max_size=8))] = draw(JSON)
        else:
            raw[key] = [[[[[[{"x": [1e308, "\x00"]}]]]]]]
    data = msgspec.json.encode(raw) if raw else b"{}"
    return data, draw(st.sampled_from([*RULE_SUBJECTS, subject_of(event)]))


@st.composite
def hostile_message(draw: st.DrawFn) -> tuple[bytes, str]:
    return _mutated(draw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_message())
def test_any_mutated_event_decodes_to_a_foldable_event_or_a_decode_error(msg: tuple[bytes, str]):
    data, subject = msg
    try:
        event = codec.decode(data, subject)
    except codec.DecodeError:
        return
    assert contract.problem(subject, event) is None
    fold([(1, event)])  # what decodes, folds


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(RULE_SUBJECTS))
def test_any_bytes_decode_or_raise_decode_error(data: bytes, subject: str):
    try:
        codec.decode(data, subject)
    except codec.DecodeError:
        pass


def test_deep_nesting_is_a_decode_error():
    with pytest.raises(codec.DecodeError):
        codec.decode(b"[" * 100_000 + b"]" * 100_000, "tocsin.config.applied")
    event = SAMPLES[0]
    raw = _raw(event)
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    raw["added"][0]["expected"] = deep
    with pytest.raises(codec.DecodeError, match="nested deeper"):
        codec.decode(msgspec.json.encode(raw), "tocsin.config.applied")


def _with_invalid_utf8(draw: st.DrawFn) -> tuple[bytes, str]:
    """A sample event with one string value's bytes replaced by bytes that are not UTF-8."""
    event = draw(st.sampled_from(SAMPLES))
    data = codec.encode(event)
    strings = [i for i in range(len(data)) if data[i : i + 1] == b'"']
    at = draw(st.sampled_from(strings))
    bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80abc", b"\xf8\x88"]))
    return data[: at + 1] + bad + data[at + 1 :], draw(st.sampled_from(RULE_SUBJECTS))


@settings(max_examples=200, deadline=None)
@given(st.composite(_with_invalid_utf8)())
def test_bytes_that_are_not_utf8_are_a_decode_error(msg: tuple[bytes, str]):
    """A string that is not UTF-8 raised UnicodeDecodeError out of ``decode``: the projector
    crashed on it, and again on every restart (the event never leaves the log)."""
    data, subject = msg
    with pytest.raises(codec.DecodeError):
        codec.decode(data, subject)


def test_a_completion_on_its_own_subject_is_admitted_without_a_plan_kept():
    """A completion's subject names its agent and its group: a scheduler judging 100,000
    tasks sees 50,000 of them a minute, and a plan kept for each (``contract.admits``) held
    tens of MB while hardly ever used again."""
    event = next(e for e in SAMPLES if isinstance(e, CheckCompleted))
    subject = subject_of(event)
    contract._plans.pop(subject, None)
    assert contract.admits(subject, event)
    assert subject not in contract._plans
    assert not contract.admits(subject, msgspec.structs.replace(event, group="other"))
