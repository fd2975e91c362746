"""Decoding events without a regular expression per text field, refusing exactly the same.

msgspec checks a string's ``pattern`` with a call into ``re`` for every field: ``Name``,
``Url`` and ``Text`` (no NUL, which PostgreSQL refuses) made half of the cost of decoding an
event, six fields of a ``check.completed``, the projector's largest CPU item (py-spy).
JSON carries a NUL only escaped, as ``\\u0000`` (a raw control character is not JSON): one
search of the payload settles every such field at once. ``decode`` decodes into mirrors of
the event types without that pattern (every other constraint kept), after that search.

The tokens' pattern (``Token``: groups, tasks, agents, locations) was the next largest part,
two thirds of what was left of decoding a ``check.completed``: the mirrors leave it out
where a field holds tokens plainly (a token, an optional one, a list of them, a dict's keys,
a struct or list of structs holding them), and ``decode`` checks the tokens it decoded
against the set of those it already found valid (a few thousand names that repeat: groups,
tasks, agents), a new one with the same compiled pattern msgspec uses (``search``). A type
holding tokens in any other shape fails at import: its tokens would go unchecked.

Whatever is in doubt (``\\u0000`` anywhere, a key listed twice, a payload the mirrors refuse)
is decoded again by ``codec.decode``, which gives the answer or error it always gave:
``decode`` admits only what ``codec.decode`` admits. The subject is checked with
``contract.admits`` (whether ``contract.problem`` finds nothing, cheaper). The mirrors
subclass the event types (``isinstance`` holds; the same name, tag, fields, defaults and
encoding); only ``==`` with an event of the type itself is False, so they are for readers
that do not compare events (the projector, the agent, the scheduler judging completions).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from operator import attrgetter
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from events import codec, contract, keyed
from events.fields import EARLIEST, LATEST, MAX_COUNT, MAX_TEXT, NO_NUL, SEVERITIES, Token
from events.types import REGISTRY, AnyEvent, Event, TaskJudged

#: Each Struct type's mirror.
_mirrors: dict[type, type] = {}

#: What msgspec checks a ``Token`` with: ``search`` of this pattern ("g\\n" passes, as there).
_TOKEN = re.compile(get_args(Token)[1].pattern)
#: Tokens joined by single spaces, each plainly one of ``_TOKEN`` (no "\\n"): an event's
#: tokens checked by one match (a space in one of them is found by counting the spaces).
_TOKENS = re.compile(r"[A-Za-z0-9_-]{1,64}(?: [A-Za-z0-9_-]{1,64})*")
#: How a field of a mirror holds tokens left to ``_tokens_valid``: one, one or None, each of a
#: list, a dict's keys, a struct holding some (or None), each struct of a list; and, made of
#: those by ``_fast``, several fields of one token each (one getter) and the one token of
#: each struct of a list.
_ONE, _OPT, _EACH, _KEYS, _SUB, _SUBS, _ONES, _EACH_ONE = range(8)
#: Per mirror: (how, the field's getter, the plan of the struct it holds) for each such field.
_Plan = list[tuple[int, Callable[[Any], Any], Any]]
_plans: dict[type, _Plan] = {}
#: Tokens found valid (bounded: once full, it keeps those it holds and takes no more). Small:
#: where more tokens repeat (150,000 group and task ids at 100,000 tasks) it would miss all
#: the same, so a miss costs one match of all the event's tokens, and a large set only held
#: megabytes of decoded copies (6 MB of the scheduler's RSS at 100,000 tasks). Started again
#: when full, it was emptied every few events by a log naming a few more tokens than its bound
#: (the projector's bench: 9,000), and nearly every event missed: 3.2 µs per event checking
#: them instead of 1.2 with the set kept.
_valid: set[str] = set()
MAX_VALID = 8_192


def _mirror_type(tp: Any) -> Any:
    """``tp`` without the NUL pattern on its strings."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *metas = get_args(tp)
        kept = [_without_nul(m) if isinstance(m, msgspec.Meta) else m for m in metas]
        inner = _mirror_type(base)
        kept = [m for m in kept if m is not None]
        return Annotated[(inner, *kept)] if kept else inner
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _mirror(tp)
    if origin in (Union, types.UnionType):
        return Union[tuple(map(_mirror_type, get_args(tp)))]  # noqa: UP007 - from a tuple
    if origin is list:
        return list[_mirror_type(get_args(tp)[0])]  # type: ignore[misc]
    if origin is dict:
        key, value = get_args(tp)
        return dict[_mirror_type(key), _mirror_type(value)]  # type: ignore[misc]
    return tp


def _without_nul(meta: msgspec.Meta) -> msgspec.Meta | None:
    """``meta`` without ``pattern`` when it is NUL's (None when nothing else is left)."""
    if meta.pattern != NO_NUL:
        return meta
    kept = {
        k: getattr(meta, k)
        for k in ("min_length", "max_length", "title", "description")
        if getattr(meta, k) is not None
    }
    return msgspec.Meta(**kept) if kept else None


def _untokened(tp: Any) -> tuple[Any, int, Any] | None:
    """``tp`` without the tokens' pattern, how it holds tokens and the plan of the struct it
    holds; None when it holds no token in a way ``_tokens`` reads (msgspec checks them)."""
    if tp == Token:
        return str, _ONE, None
    if tp == Union[Token, None]:  # noqa: UP007 - compared with what msgspec gives
        return str | None, _OPT, None
    held = _mirror_type(tp)
    if isinstance(held, type) and _plans.get(held):
        return held, _SUB, _plans[held]
    args = get_args(held)
    if get_origin(held) in (Union, types.UnionType) and len(args) == 2 and args[1] is type(None):
        if isinstance(args[0], type) and _plans.get(args[0]):
            return held, _SUB, _plans[args[0]]
    if get_origin(tp) is not Annotated:
        return None
    base, *metas = get_args(tp)
    inner = get_args(base)
    if get_origin(base) is list and inner[0] == Token:
        return Annotated[(list[str], *metas)], _EACH, None
    if get_origin(base) is dict and inner[0] == Token and _mirror_type(inner[1]) == inner[1]:
        return Annotated[(dict[str, inner[1]], *metas)], _KEYS, None  # type: ignore[valid-type]
    item = _mirror_type(inner[0]) if get_origin(base) is list else None
    if isinstance(item, type) and _plans.get(item):
        return Annotated[(list[item], *metas)], _SUBS, _plans[item]  # type: ignore[valid-type]
    return None


def _mirror(cls: type[msgspec.Struct]) -> type:
    if cls in _mirrors:
        return _mirrors[cls]
    # Only the fields whose type changes are declared again: the others, inherited, keep
    # their place and whether they are keyword-only.
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    holding: list[tuple[int, str, Any]] = []  # (how, field, the plan of a struct it holds)
    for f in msgspec.structs.fields(cls):
        untokened = _untokened(f.type)
        if untokened is not None:
            tp, how, held = untokened
            holding.append((how, f.name, held))
        else:
            tp = _mirror_type(f.type)
            if _hides_tokens(tp):
                raise TypeError(f"{cls.__name__}.{f.name}: tokens in a shape lenient cannot read")
        if tp == f.type:
            continue
        if f.default is not msgspec.NODEFAULT:
            fields.append((f.name, tp, f.default))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, tp, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, tp))
    config = cls.__struct_config__
    mirror = msgspec.defstruct(
        cls.__name__,
        fields,
        bases=(cls,),
        module=__name__,
        tag=config.tag,
        tag_field=config.tag_field,
        forbid_unknown_fields=config.forbid_unknown_fields,
        omit_defaults=config.omit_defaults,
        # Not tracked by the garbage collector (an event refers to no event): a batch's tens
        # of thousands of events were scanned by every collection while they lived.
        gc=False,
    )
    _mirrors[cls] = mirror
    _plans[mirror] = _plan(holding)
    return mirror


def _hides_tokens(tp: Any) -> bool:
    """Whether ``tp`` holds, where ``_untokened`` does not look, a mirror whose tokens msgspec
    no longer checks (they would go unchecked)."""
    if isinstance(tp, type):
        return bool(_plans.get(tp))
    return any(_hides_tokens(arg) for arg in get_args(tp))


def _plan(holding: list[tuple[int, str, Any]]) -> _Plan:
    """How to read the tokens of the fields ``holding`` them, in few calls per event: the
    fields of one token each by one getter, a list of structs of one token each by ``map``."""
    ones = [name for how, name, _ in holding if how == _ONE]
    # (how, getter, how many names it reads): one gives the token, several a tuple of them.
    plan: _Plan = [(_ONES, attrgetter(*ones), len(ones))] if ones else []
    for how, name, held in holding:
        if how == _SUBS and len(held) == 1 and held[0][0] == _ONES and held[0][2] == 1:
            plan.append((_EACH_ONE, attrgetter(name), held[0][1]))
        elif how != _ONE:
            plan.append((how, attrgetter(name), held))
    return plan


def _collect(plan: _Plan, obj: Any, out: list[str]) -> None:
    """The tokens ``obj`` holds where its ``plan`` says, appended to ``out``."""
    for how, get, held in plan:
        value = get(obj)
        if how == _ONES:
            if held == 1:
                out.append(value)
            else:
                out.extend(value)
        elif how == _EACH_ONE:
            out.extend(map(held, value))
        elif value is None:
            continue
        elif how == _OPT:
            out.append(value)
        elif how == _EACH or how == _KEYS:
            out.extend(value)
        elif how == _SUB:
            _collect(held, value, out)
        else:
            for item in value:
                _collect(held, item, out)


def _tokens_valid(event: Any) -> bool:
    """Whether every token the mirror left unchecked in ``event`` matches ``Token``."""
    plan = _plans[type(event)]
    if not plan:
        return True
    found: list[str] = []
    _collect(plan, event, found)
    if _valid.issuperset(found):
        return True
    joined = " ".join(found)
    if _TOKENS.fullmatch(joined) and joined.count(" ") == len(found) - 1:
        if len(_valid) + len(found) <= MAX_VALID:
            _valid.update(found)
        return True
    for token in found:
        if token not in _valid:
            if not _TOKEN.search(token):
                return False
            if len(_valid) < MAX_VALID:
                _valid.add(token)
    return True


for _cls in REGISTRY.values():
    _mirror(_cls)
#: The mirrors of the types that carry free-form values or settings (``contract.content_problem``).
_FREE_FORM = frozenset(_mirrors[c] for c in contract.FREE_FORM)
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
    Union[tuple(_mirrors[c] for c in get_args(AnyEvent))]  # noqa: UP007 - from a tuple
)


def _in_doubt(data: bytes) -> bool:
    """Whether ``data`` is too long for an event or may hold a NUL (``\\u0000``, the only way
    JSON can): a backslash first, one ``memchr`` over the payload, where searching for the
    six bytes took a tenth of the projector's decoding (payloads rarely escape anything)."""
    return len(data) > codec.MAX_EVENT_BYTES or (b"\\" in data and b"\\u0000" in data)


def _mirrored(data: bytes) -> Any:
    """The payload in a mirror, or None when ``codec.decode`` must answer (any doubt)."""
    if _in_doubt(data):
        return None
    try:
        event = _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    if (
        event.v != event.VERSION
        or not _tokens_valid(event)
        or (type(event) in _FREE_FORM and contract.content_problem(event))
        or keyed.repeated(event) is not None
    ):
        return None
    return event


def decode(data: bytes, subject: str) -> AnyEvent:
    """What ``codec.decode(data, subject)`` returns or raises, cheaper when it is an event."""
    event = _mirrored(data)
    if event is None or not contract.admits(subject, event):
        return codec.decode(data, subject)
    return event  # type: ignore[no-any-return]


def decode_admitted(data: bytes) -> AnyEvent:
    """The event of a payload ``decode`` admitted before (in the rebuild's feed process),
    without checking it again."""
    return _decoder.decode(data)  # type: ignore[no-any-return]


def bounded(data: bytes) -> bool:
    """Whether ``data`` is an event within the bounds of its fields (sizes, ranges, no NUL in
    its text): ``decode`` without its tokens, subject, keyed lists and free-form values, for a
    writer whose event takes those from events admitted before (the agent's completions, made
    of their requests). False in doubt (``\\u0000`` anywhere): ``decode`` then answers."""
    if _in_doubt(data):
        return False
    try:
        event = _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return False
    return bool(event.v == event.VERSION)


def encode_admitted(event: Event, subject: str) -> bytes:
    """What ``codec.encode_admitted`` returns or raises, cheaper: for a writer that checks
    each of many events (verdicts, requests, completions) before publishing it."""
    data = codec.encode(event)
    decode(data, subject)
    return data


def encode_judged(verdict: TaskJudged, subject: str, keys_admitted: bool) -> bytes:
    """What ``encode_admitted(verdict, subject)`` returns or raises, cheaper when
    ``keys_admitted``: its group and its tasks (in order) are those of a request the contract
    admitted, so its tokens and keys are; what else it holds is held to the bounds of its
    fields here (a verdict checked by a decode was a fifth of the scheduler's CPU per
    request at 100,000 tasks), and decoded as ever where in doubt."""
    data = codec.encode(verdict)
    if not (
        keys_admitted
        and len(data) <= codec.MAX_EVENT_BYTES
        and _judged_in_bounds(verdict)
        and contract.admits(subject, verdict)
    ):
        decode(data, subject)
    return data


def _judged_in_bounds(v: TaskJudged) -> bool:
    """Whether each field of ``v`` but its tokens and keys is within its type's bounds."""
    if not (
        v.v == v.VERSION
        and type(v.completion) is int
        and 0 <= v.completion <= MAX_COUNT
        and type(v.recheck) is bool
        and _timestamp(v.at)
        and _timestamp(v.next_run)
    ):
        return False
    for j in v.judgements:
        reason = j.reason
        if not (
            j.severity in SEVERITIES
            and (j.previous is None or j.previous in SEVERITIES)
            and type(reason) is str
            and len(reason) <= MAX_TEXT
            and "\x00" not in reason
            and type(j.failures) is int
            and 0 <= j.failures <= MAX_COUNT
            and not j.locations
        ):
            return False
    return True


def _timestamp(t: Any) -> bool:
    return type(t) in (float, int) and EARLIEST <= t <= LATEST
