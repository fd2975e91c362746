"""``events.lenient.decode`` (the projector's, the agent's, the scheduler's) answers exactly
what ``codec.decode`` answers: the same event, or a DecodeError with the same words, whatever
the bytes."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import codec, contract, lenient, subjects
from events.fields import Token
from events.types import REGISTRY, Event, Judgement, TaskJudged
from tests.test_contract import RULE_SUBJECTS, _raw, _with_invalid_utf8, hostile_message
from tests.test_events import SAMPLES, subject_of

REGISTRY_BY_NAME = {cls.__name__: cls for cls in REGISTRY.values()}


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
    for kind in ("CheckCompleted", "CheckRequested"):
        event = next(e for e in SAMPLES if type(e).__name__ == kind)
        if field not in event.__struct_fields__:
            continue
        data = msgspec.json.encode({**_raw(event), field: value})
        with pytest.raises(codec.DecodeError):
            lenient.decode(data, subject_of(event))
        assert_same_answer(data, subject_of(event))


def _samples_with_each_token(value: str) -> list[tuple[bytes, str]]:
    """Each sample with each of its tokens, wherever it is (nested, in a list, a dict's
    key), set to ``value`` in turn."""
    out = []

    def edits(raw: object, path: tuple[object, ...]) -> list[tuple[object, ...]]:
        found: list[tuple[object, ...]] = []
        if isinstance(raw, dict):
            for key, item in raw.items():
                if key in ("group", "agent", "location", "task", "id", "page"):
                    found.append((*path, key))
                if key == "locations" and isinstance(item, dict):  # a judgement's: by key
                    found += [(*path, key, ("key", k)) for k in item]
                elif key in ("locations", "removed") and isinstance(item, list):
                    found += [(*path, key, i) for i in range(len(item))]
                else:
                    found += edits(item, (*path, key))
        elif isinstance(raw, list):
            for i, item in enumerate(raw):
                found += edits(item, (*path, i))
        return found

    for event in SAMPLES:
        raw = _raw(event)
        for path in edits(raw, ()):
            copy = msgspec.json.decode(msgspec.json.encode(raw))
            *parents, last = path
            where = copy
            for step in parents:
                where = where[step]
            if isinstance(last, tuple):
                where[value] = where.pop(last[1])
            else:
                where[last] = value
            out.append((msgspec.json.encode(copy), subject_of(event)))
    return out


TOKENS = ["a.b", "", "g" * 65, "g\n", "é", "ok-token_1", "a b", "g" * 64 + "\n", " g"]


@pytest.mark.parametrize("value", TOKENS)
def test_a_token_anywhere_gets_the_same_answer(value: str):
    """The tokens the mirrors leave to ``lenient`` (in lists, dict keys, nested structs) are
    refused or admitted exactly as msgspec's pattern does (``g\\n`` passes there, as ``$``
    matches before a final newline), the second time too (from the set of valid ones)."""
    msgs = _samples_with_each_token(value)
    assert len(msgs) > 20
    for _ in range(2):
        for data, subject in msgs:
            assert_same_answer(data, subject)


@pytest.mark.parametrize("value", TOKENS)
def test_a_token_anywhere_gets_the_same_answer_when_no_token_is_known(value: str):
    """The same with the set of known tokens empty each time, as at 100,000 tasks where it
    misses: an event's tokens are then matched all at once (joined by spaces, which is why a
    token holding one is a case)."""
    for data, subject in _samples_with_each_token(value):
        lenient._valid.clear()
        assert_same_answer(data, subject)


def _decode_distinct(n: int) -> None:
    """``n`` verdicts, each naming a group and a task of its own, decoded from an empty set of
    known tokens: each decodes to what was encoded."""
    lenient._valid.clear()
    for i in range(n):
        group = f"g{i}"
        verdict = TaskJudged(
            at=1.8e9,
            group=group,
            completion=i,
            next_run=1.8e9,
            judgements=[Judgement(f"t{i}", "ok", None, "fine")],
        )
        data = codec.encode(verdict)
        assert codec.encode(lenient.decode(data, subjects.judged(group))) == data


def test_the_known_tokens_stay_bounded():
    """Decoded copies of the tokens are what the set holds: never more than its bound, however
    many distinct ones the log names (at 100,000 tasks, 150,000 group and task ids)."""
    _decode_distinct(lenient.MAX_VALID)
    assert 0 < len(lenient._valid) <= lenient.MAX_VALID


def test_a_full_set_of_known_tokens_keeps_those_it_holds():
    """A log naming a few more tokens than the bound does not empty the set: emptied whenever
    full, it lost the tokens that repeat and nearly every event missed it."""
    _decode_distinct(lenient.MAX_VALID + 10)
    assert {"g0", "t0", "g100", "t100"} <= lenient._valid
    assert len(lenient._valid) == lenient.MAX_VALID


class Pair(msgspec.Struct):
    a: Token
    b: Token


class Holder(msgspec.Struct):
    pairs: list[Pair]


class Bounded(msgspec.Struct):
    pairs: Annotated[list[Pair], msgspec.Meta(max_length=4)]


def test_tokens_lenient_cannot_read_fail_at_import():
    """A struct holding tokens in a shape lenient does not read (here a list without its
    bound) would have them checked by nobody: its mirror is refused outright."""
    with pytest.raises(TypeError, match=r"Holder\.pairs"):
        lenient._mirror(Holder)
    mirror = lenient._mirror(Bounded)
    good = msgspec.json.decode(b'{"pairs": [{"a": "x", "b": "y"}]}', type=mirror)
    bad = msgspec.json.decode(b'{"pairs": [{"a": "x", "b": "y.z"}]}', type=mirror)
    assert lenient._tokens_valid(good) and not lenient._tokens_valid(bad)


def test_the_hot_types_decode_without_the_token_pattern():
    """A completion's, a request's, a start's and a verdict's tokens are checked outside
    msgspec (its call into ``re`` for each was two thirds of decoding them)."""
    token = r"^[A-Za-z0-9_-]{1,64}$"
    for name in ("CheckCompleted", "CheckRequested", "CheckStarted", "TaskJudged"):
        mirror = lenient._mirrors[REGISTRY_BY_NAME[name]]
        assert token not in repr([f.type for f in msgspec.structs.fields(mirror)]), name


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
    decoded = lenient.decode(codec.encode(event), subject_of(event))
    assert decoded.requested_by == "me"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "kind", ["CheckRequested", "CheckStarted", "CheckCompleted", "TaskJudged"], ids=str
)
def test_a_per_group_event_keeps_no_plan_per_subject(kind: str):
    """These subjects name a group: each is seen once a cycle (the agent's requests, the
    scheduler's completions, the projector's everything), and a plan kept for each would be
    megabytes of a cache that hardly ever hits."""
    sample = next(e for e in SAMPLES if type(e).__name__ == kind)
    contract._plans.clear()
    for i in range(50):
        event = msgspec.structs.replace(sample, group=f"g{i}")
        assert lenient.decode(codec.encode(event), subject_of(event)) is not None
    assert contract._plans == {}


_BOUNDARY_TIMES = [946_684_799.9, 946_684_800.0, 1.8e9, 4_102_444_800.0, 4_102_444_800.5]
_ODD_FLOATS = [float("nan"), float("inf"), -1.0]
_COUNTS = [-1, 0, 7, 2**53, 2**53 + 1]
_SEVERITY_LIKE = st.sampled_from(["ok", "warning", "critical", "unknown", "OK", "", "bad"])
_REASONS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["x" * 65536, "x" * 65537, "a\x00b", "\x00", "é" * 65536, "line\n"]),
)


@st.composite
def _verdicts(draw: st.DrawFn) -> TaskJudged:
    """Verdicts whose group and task ids are valid and distinct (what ``keys_admitted``
    vouches for), anything in or out of bounds elsewhere."""
    times = st.sampled_from(_BOUNDARY_TIMES + _ODD_FLOATS) | st.floats(9.4e8, 4.2e9)
    tasks = draw(st.lists(st.sampled_from(["t1", "t2", "t-3", "t_4"]), max_size=4, unique=True))
    judgements = [
        Judgement(
            task,
            draw(_SEVERITY_LIKE),  # type: ignore[arg-type]
            draw(st.none() | _SEVERITY_LIKE),  # type: ignore[arg-type]
            draw(_REASONS),
            draw(st.sampled_from(_COUNTS)),
            draw(st.sampled_from([{}, {}, {"eu": "ok"}])),  # type: ignore[arg-type]
        )
        for task in tasks
    ]
    return TaskJudged(
        at=draw(times),
        group="g1",
        completion=draw(st.sampled_from(_COUNTS)),
        next_run=draw(times),
        judgements=judgements,
        recheck=draw(st.booleans()),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_verdicts())
def test_a_verdict_of_admitted_keys_is_refused_exactly_as_the_contract_does(v: TaskJudged):
    """``encode_judged`` with its keys vouched for checks the rest by the fields' bounds:
    it refuses exactly what a decode does, and returns the same bytes."""
    subject = subjects.judged(v.group)
    try:
        expected: bytes | None = codec.encode_admitted(v, subject)
    except codec.DecodeError:
        expected = None
    try:
        got: bytes | None = lenient.encode_judged(v, subject, keys_admitted=True)
    except codec.DecodeError:
        got = None
    assert got == expected
