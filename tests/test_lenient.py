"""``events.lenient.decode`` (the projector's) and ``lenient.decode_request`` (the agent's)
answer exactly what ``codec.decode`` answers: the same event, or a DecodeError with the same
words, whatever the bytes."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import codec, contract, lenient
from events.types import REGISTRY, Event
from tests.test_contract import RULE_SUBJECTS, _raw, _with_invalid_utf8, hostile_message
from tests.test_events import SAMPLES, subject_of


def _answer(decode: object, data: bytes, subject: str) -> tuple[str, bytes | str]:
    try:
        event = decode(data, subject)  # type: ignore[operator]
    except codec.DecodeError as exc:
        return "refused", str(exc)
    return type(event).__name__, codec.encode(event)


#: The cheaper decoders, each of which must answer as ``codec.decode``.
DECODERS = [lenient.decode, lenient.decode_request]
decoders = pytest.mark.parametrize("decode", DECODERS, ids=lambda d: d.__name__)


def assert_same_answer(data: bytes, subject: str) -> None:
    expected = _answer(codec.decode, data, subject)
    for decode in DECODERS:
        assert _answer(decode, data, subject) == expected, decode.__name__


@pytest.mark.parametrize("cls", sorted(REGISTRY.values(), key=lambda c: c.__name__), ids=str)
def test_each_mirror_is_its_type_without_the_nul_pattern(cls: type[Event]):
    """Same name, fields, defaults, tag and options: what decodes into the mirror encodes
    back to the same bytes, and folds as the type itself."""
    mirror = lenient._mirrors[cls]
    assert issubclass(mirror, cls) and mirror.__name__ == cls.__name__
    assert mirror.__struct_fields__ == cls.__struct_fields__

    def fields(c: type) -> list[tuple[object, ...]]:
        return [(f.name, f.default, f.default_factory) for f in msgspec.structs.fields(c)]

    assert fields(mirror) == fields(cls)
    for option in ("tag", "tag_field", "forbid_unknown_fields", "omit_defaults", "array_like"):
        assert getattr(mirror.__struct_config__, option) == getattr(cls.__struct_config__, option)


@decoders
@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_sample_decodes_to_its_type(decode: Any, event: Event):
    data = codec.encode(event)
    decoded = decode(data, subject_of(event))
    assert isinstance(decoded, type(event)) and codec.encode(decoded) == data


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("group", "a.b"),  # a token with a character a subject token cannot have
        ("group", ""),
        ("group", "g" * 65),
        ("agent", "a*"),
        ("request", "r\x00"),  # NUL in a name
        ("request", "r" * 257),
    ],
)
def test_a_field_its_pattern_refuses_is_refused_alike(field: str, value: str):
    for kind in ("CheckCompleted", "CheckRequested"):
        event = next(e for e in SAMPLES if type(e).__name__ == kind)
        if field not in event.__struct_fields__:
            continue
        data = msgspec.json.encode({**_raw(event), field: value})
        for decode in DECODERS:
            with pytest.raises(codec.DecodeError):
                decode(data, subject_of(event))
        assert_same_answer(data, subject_of(event))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_message())
def test_any_mutated_event_gets_the_same_answer(msg: tuple[bytes, str]):
    assert_same_answer(*msg)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(RULE_SUBJECTS))
def test_any_bytes_get_the_same_answer(data: bytes, subject: str):
    assert_same_answer(data, subject)


@settings(max_examples=200, deadline=None)
@given(st.composite(_with_invalid_utf8)())
def test_bytes_that_are_not_utf8_get_the_same_answer(msg: tuple[bytes, str]):
    assert_same_answer(*msg)


def _variants(event: Event) -> list[Event]:
    """``event`` and copies with each field a subject can fix set to another value."""
    out = [event]
    for name, value in [
        ("agent", "other"),
        ("group", "other"),
        ("location", "other"),
        ("page", "other"),
        ("kind", "max_deliver"),
        ("consumer", "agent:a1"),
        ("request", None),
        ("requested_by", "someone"),
        ("requested_by", None),
    ]:
        if name in event.__struct_fields__:
            out.append(msgspec.structs.replace(event, **{name: value}))
    return out


@pytest.mark.parametrize("subject", [*RULE_SUBJECTS, "tocsin.x", "other.check.started.a.b"])
def test_admits_says_what_problem_says(subject: str):
    for event in SAMPLES:
        for variant in _variants(event):
            assert contract.admits(subject, variant) == (
                contract.problem(subject, variant) is None
            ), (subject, variant)


def _request() -> Event:
    return next(e for e in SAMPLES if type(e).__name__ == "CheckRequested")


@pytest.mark.parametrize(
    "subject",
    [
        "tocsin.check.requested.default.g2",  # another group's
        "tocsin.check.requested.eu.g1",  # another location's
        "tocsin.check.requested.default.g1.now",  # "check now"'s, for a scheduled run
        "tocsin.imported.check.requested.default.g1",  # history, never work
        "tocsin.check.started.a1.default.g1",
    ],
)
def test_a_request_on_a_subject_not_its_own_gets_the_same_answer(subject: str):
    assert_same_answer(codec.encode(_request()), subject)


def test_a_check_now_request_on_its_own_subject_is_decoded():
    event = msgspec.structs.replace(_request(), requested_by="me")
    decoded = lenient.decode_request(codec.encode(event), subject_of(event))
    assert decoded.requested_by == "me"  # type: ignore[attr-defined]


def test_the_agents_decode_keeps_no_plan_per_subject():
    """An agent sees one subject per request group, once a cycle: a plan kept for each would
    be megabytes of a cache that hardly ever hits."""
    contract._plans.clear()
    for i in range(50):
        event = msgspec.structs.replace(_request(), group=f"g{i}", request=f"g{i}.default.1")
        assert lenient.decode_request(codec.encode(event), subject_of(event)) is not None
    assert contract._plans == {}
