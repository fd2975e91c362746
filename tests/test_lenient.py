"""``events.lenient.decode`` (the projector's) answers exactly what ``codec.decode`` answers:
the same event, or a DecodeError with the same words, whatever the bytes."""

from __future__ import annotations

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


def assert_same_answer(data: bytes, subject: str) -> None:
    assert _answer(lenient.decode, data, subject) == _answer(codec.decode, data, subject)


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


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_sample_decodes_to_its_type(event: Event):
    data = codec.encode(event)
    decoded = lenient.decode(data, subject_of(event))
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
    event = next(e for e in SAMPLES if type(e).__name__ == "CheckCompleted")
    data = msgspec.json.encode({**_raw(event), field: value})
    with pytest.raises(codec.DecodeError):
        lenient.decode(data, subject_of(event))
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
