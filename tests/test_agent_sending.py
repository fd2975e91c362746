"""The agent checks a completion it made of a request as cheaply as it can and exactly as every
reader decodes it (``services/agent/sending.py``): whatever a target answered, the same
bytes or the same refusal as ``lenient.encode_admitted``, and a refused one becomes a
completion saying each check could not run."""

from __future__ import annotations

import time
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import codec, lenient, subjects
from events.fields import Token
from events.types import CheckCompleted, CheckOutcome, CheckRequested, CheckSpec, Observation
from services.agent.sending import checked, publishable

NOW = time.time()
REQUEST = CheckRequested(
    at=NOW,
    request="g1.eu.1",
    group="g1",
    location="eu",
    url="https://example.org/",
    method="GET",
    ip_version=4,
    timeout=10,
    due=NOW,
    checks=[CheckSpec("t1", "status-is", 200), CheckSpec("t2", "body-contains", "fine")],
)
SUBJECT = subjects.completed("a1", "eu", "g1")

_texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["a\x00b", "\\u0000", "x" * 65_537, "n" * 257, ""]),
)
_floats = st.one_of(st.none(), st.floats(), st.sampled_from([1e16, -1.0, 5e9, 3e11]))
_deep: Any = [1]
for _ in range(20):
    _deep = [_deep]
_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([2**63, -(2**63) - 1, 2**63 - 1, _deep, list(range(1001))]),
        st.floats(),
        _texts,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_texts, inner, max_size=3)
    ),
    max_leaves=8,
)
_observations = st.builds(
    Observation,
    status=st.one_of(st.none(), st.integers(-2, 1200)),
    headers=st.one_of(
        st.dictionaries(_texts, _texts, max_size=3),
        st.just({f"h{i}": "v" for i in range(257)}),
    ),
    elapsed_ms=_floats,
    body_bytes=st.one_of(st.none(), st.integers(-1, 2**54)),
    error=st.one_of(st.none(), _texts),
    error_kind=st.one_of(st.none(), _texts),
    cert_not_after=_floats,
    facts=st.dictionaries(_texts, _json, max_size=3),
)
_outcome = st.tuples(st.sampled_from(["success", "failure", "error", "unknown"]), _texts, _floats)


@st.composite
def _completions(draw: st.DrawFn) -> CheckCompleted:
    """A completion of REQUEST as the agent makes one: the request's group and tasks, the
    agent's name and location; one part of the rest (or all of it) what a target, a check or
    the clock made of it, the others as they usually are."""
    part = draw(st.sampled_from(["facts", "observation", "outcomes", "times", "all"]))
    observation = Observation(status=200, headers={"server": "x"}, elapsed_ms=1.5, body_bytes=9)
    if part in ("observation", "all"):
        observation = draw(_observations)
    elif part == "facts":
        observation.facts = draw(st.dictionaries(_texts, _json, max_size=3))
    made = part in ("outcomes", "all")
    outcomes = [
        CheckOutcome(spec.task, spec.kind, *(draw(_outcome) if made else ("success", "", None)))  # type: ignore[arg-type]
        for spec in REQUEST.checks
    ]
    times = st.one_of(st.just(NOW), st.floats()) if part in ("times", "all") else st.just(NOW)
    return CheckCompleted(
        at=draw(times),
        request=REQUEST.request,
        group=REQUEST.group,
        agent="a1",
        location="eu",
        started=draw(times),
        observation=observation,
        outcomes=outcomes,
    )


def _answer(check: Any, completion: CheckCompleted) -> bytes | str:
    try:
        return check(completion, SUBJECT)  # type: ignore[no-any-return]
    except codec.DecodeError as exc:
        return f"refused: {exc}"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_completions())
def test_a_completion_gets_the_answer_of_the_whole_decode(completion: CheckCompleted):
    assert _answer(checked, completion) == _answer(lenient.encode_admitted, completion)


def _token_fields(cls: type, prefix: str = "") -> set[str]:
    """The fields of ``cls`` (and of the structs it holds) whose values are subject tokens."""
    out = set()
    for f in msgspec.structs.fields(cls):
        for tp in _types_in(f.type):
            if tp == Token:
                out.add(prefix + f.name)
            elif isinstance(tp, type) and issubclass(tp, msgspec.Struct):
                out |= _token_fields(tp, f"{prefix}{f.name}.")
    return out


def _types_in(tp: Any) -> list[Any]:
    """``tp`` and every type it is made of (lists, dicts, unions, annotations)."""
    if tp == Token:
        return [tp]
    origin = get_origin(tp)
    if origin is Annotated:
        return _types_in(get_args(tp)[0])
    if origin in (list, dict, Union) or str(origin) == "<class 'types.UnionType'>":
        return [t for arg in get_args(tp) for t in _types_in(arg)]
    return [tp]


def test_a_completion_holds_no_token_the_agent_does_not_take_from_its_request_or_itself():
    """What the cheaper check leaves to the reader's decode alone: a new token field of a
    completion (one a target's answer could fill) must be checked by ``checked`` first."""
    assert _token_fields(CheckCompleted) == {"group", "agent", "location", "outcomes.task"}


@pytest.mark.parametrize("where", ["detail", "header", "value"])
def test_a_completion_the_contract_refuses_says_each_check_could_not_run(where: str):
    obs = Observation(status=200, headers={"server": "x\x00" if where == "header" else "x"})
    completion = CheckCompleted(
        at=NOW,
        request=REQUEST.request,
        group=REQUEST.group,
        agent="a1",
        location="eu",
        started=NOW,
        observation=obs,
        outcomes=[
            CheckOutcome(
                spec.task,
                spec.kind,
                "success",
                "a\x00b" if where == "detail" else "",
                1e16 if where == "value" else None,
            )
            for spec in REQUEST.checks
        ],
    )
    subject, data = publishable(REQUEST, completion, "a1", "eu")
    assert subject == SUBJECT
    sent = codec.decode(data, subject)
    assert isinstance(sent, CheckCompleted) and sent.observation.error_kind == "agent"
    assert [(o.task, o.status) for o in sent.outcomes] == [("t1", "error"), ("t2", "error")]
    assert all("could not run the check" in o.detail for o in sent.outcomes)


def test_a_completion_the_contract_admits_is_sent_as_it_is():
    completion = CheckCompleted(
        at=NOW,
        request=REQUEST.request,
        group=REQUEST.group,
        agent="a1",
        location="eu",
        started=NOW,
        observation=Observation(status=200, facts={"a": [1, "\\u0000 is text"]}),
        outcomes=[CheckOutcome(s.task, s.kind, "success", "fine") for s in REQUEST.checks],
    )
    assert publishable(REQUEST, completion, "a1", "eu") == (SUBJECT, codec.encode(completion))
