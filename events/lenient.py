"""Decoding events without a regular expression per text field, refusing exactly the same.

msgspec checks a string's ``pattern`` with a call into ``re`` for every field: ``Name``,
``Url`` and ``Text`` (no NUL, which PostgreSQL refuses) made half of the cost of decoding an
event, six fields of a ``check.completed``, the projector's largest CPU item (py-spy).
JSON carries a NUL only escaped, as ``\\u0000`` (a raw control character is not JSON): one
search of the payload settles every such field at once. ``decode`` decodes into mirrors of
the event types without that pattern (every other constraint kept, the tokens' patterns
too), after that search.

Whatever is in doubt (``\\u0000`` anywhere, a payload the mirrors refuse) is decoded again
by ``codec.decode``, which gives the answer or error it always gave: ``decode`` admits only
what ``codec.decode`` admits. The subject is checked with ``contract.admits`` (whether
``contract.problem`` finds nothing, cheaper), or, for the agent's check requests
(``decode_request``), against the subject the request names. The mirrors subclass the event types
(``isinstance`` holds; the same name, tag, fields, defaults and encoding); only ``==`` with
an event of the type itself is False, so they are for readers that do not compare events
(the projector, the agent, the scheduler judging completions).
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from events import codec, contract
from events.fields import NO_NUL
from events.types import REGISTRY, AnyEvent, CheckRequested

#: Each Struct type's mirror.
_mirrors: dict[type, type] = {}


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


def _mirror(cls: type[msgspec.Struct]) -> type:
    if cls in _mirrors:
        return _mirrors[cls]
    # Only the fields whose type changes are declared again: the others, inherited, keep
    # their place and whether they are keyword-only.
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(cls):
        tp = _mirror_type(f.type)
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
    return mirror


for _cls in REGISTRY.values():
    _mirror(_cls)
#: The mirrors of the types that carry free-form values (``contract.expected_values``).
_FREE_FORM = frozenset(_mirrors[c] for c in contract.FREE_FORM)
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
    Union[tuple(_mirrors[c] for c in get_args(AnyEvent))]  # noqa: UP007 - from a tuple
)


def _mirrored(data: bytes) -> Any:
    """The payload in a mirror, or None when ``codec.decode`` must answer (any doubt)."""
    if len(data) > codec.MAX_EVENT_BYTES or b"\\u0000" in data:
        return None
    try:
        event = _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    if event.v != event.VERSION or (
        type(event) in _FREE_FORM
        and any(map(contract.free_form_problem, contract.expected_values(event)))
    ):
        return None
    return event


def decode(data: bytes, subject: str) -> AnyEvent:
    """What ``codec.decode(data, subject)`` returns or raises, cheaper when it is an event."""
    event = _mirrored(data)
    if event is None or not contract.admits(subject, event):
        return codec.decode(data, subject)
    return event  # type: ignore[no-any-return]


def decode_request(data: bytes, subject: str) -> AnyEvent:
    """The same for the agent's work queue: a check request is admitted on the subject it
    names itself (``contract.subject_of``: its location, its group, "now" when asked by
    someone), compared as text instead of planned per subject by ``contract.admits``. An
    agent sees each group's subject once a cycle: plans kept for them would be a cache of
    megabytes that hardly ever hits. Anything else is ``codec.decode``'s to answer."""
    event = _mirrored(data)
    if isinstance(event, CheckRequested) and contract.subject_of(event) == subject:
        return event
    return codec.decode(data, subject)


def decode_admitted(data: bytes) -> AnyEvent:
    """The event of a payload ``decode`` admitted before (in the rebuild's feed process),
    without checking it again."""
    return _decoder.decode(data)  # type: ignore[no-any-return]
