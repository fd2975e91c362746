"""Decoding events without a regular expression per text field, refusing exactly the same.

msgspec checks a string's ``pattern`` with a call into ``re`` for every field: two thirds of
decoding a ``check.completed`` (ten such fields), the projector's largest CPU item (py-spy).
``decode`` decodes into mirrors of the event types whose strings carry no pattern, then
proves what the patterns said, cheaper:

- no NUL in any text (``Name``, ``Url``, ``Text``…): JSON carries a NUL only escaped, as
  ``\\u0000`` (a raw control character is not JSON), so one search of the payload settles
  every such field of it;
- any other pattern (``Token``: groups, tasks, agents, locations): each value is matched
  once and remembered, a deployment's names being a bounded set seen again and again.

Whatever is in doubt (``\\u0000`` anywhere, a value the mirrors refuse, a value that does
not match) is decoded again by ``codec.decode``, which gives the answer or error it always
gave: ``decode`` admits only what ``codec.decode`` admits. The mirrors subclass the event
types (``isinstance`` holds; the same name, tag, fields, defaults and encoding); only ``==``
with an event of the type itself is False, so they are for readers that do not compare
events (the projector).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from operator import attrgetter
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from events import codec
from events.fields import NO_NUL
from events.types import REGISTRY, AnyEvent

#: A value of a field, checked against what its pattern says (True: it may be admitted).
Check = Callable[[Any], bool]

#: The ``msgspec.Meta`` constraints kept on a mirror's string (everything but ``pattern``).
_KEPT = ("min_length", "max_length")
#: Values remembered per pattern, at most: a log that names more is checked by ``re`` again.
MEMO_SIZE = 65_536
#: Longer values are matched each time, never remembered (a sealed request's base64).
MEMO_LENGTH = 256


class _Memo:
    """The values that matched one pattern, so far."""

    def __init__(self, pattern: str) -> None:
        self.match = re.compile(pattern).search
        #: None stands for an optional value left out: only a field that admits None (and
        #: has no pattern to match then) ever decodes to it.
        self.good: set[str | None] = {None}

    def __call__(self, value: Any) -> bool:
        return value in self.good or self._learn(value)

    def _learn(self, value: str) -> bool:
        if self.match(value) is None:
            return False
        if len(value) <= MEMO_LENGTH:
            if len(self.good) >= MEMO_SIZE:
                self.good.clear()
                self.good.add(None)
            self.good.add(value)
        return True


_memos: dict[str, _Memo] = {}
_mirrors: dict[type, type] = {}


def _mirror_type(tp: Any) -> tuple[Any, Check | None]:
    """``tp`` without string patterns, and what checks its values' patterns (None: none
    but NUL's, which the payload search covers)."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *metas = get_args(tp)
        inner, check = _mirror_type(base)
        kept: list[Any] = []
        for meta in metas:
            if isinstance(meta, msgspec.Meta) and meta.pattern is not None:
                if base is not str:
                    raise TypeError(f"a pattern on {base!r}")
                if meta.pattern != NO_NUL:
                    check = _memos.setdefault(meta.pattern, _Memo(meta.pattern))
                limits = {k: getattr(meta, k) for k in _KEPT if getattr(meta, k) is not None}
                if any(getattr(meta, k) is not None for k in _OTHER_META):
                    raise TypeError(f"a pattern with other constraints: {meta!r}")
                meta = msgspec.Meta(**limits) if limits else None
            if meta is not None:
                kept.append(meta)
        return (Annotated[(inner, *kept)] if kept else inner), check
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _mirror(tp)
    if origin in (Union, types.UnionType):
        parts = [_mirror_type(arg) for arg in get_args(tp)]
        checks = [(arg, c) for arg, (_, c) in zip(get_args(tp), parts, strict=True) if c]
        mirrored: Any = Union[tuple(m for m, _ in parts)]  # type: ignore[valid-type]  # noqa: UP007
        if not checks:
            return mirrored, None
        if len(checks) == 1 and set(get_args(tp)) == {checks[0][0], type(None)}:
            inner_check = checks[0][1]
            if isinstance(inner_check, _Memo):  # which takes None as it is
                return mirrored, inner_check
            return mirrored, lambda v: v is None or inner_check(v)
        raise TypeError(f"a union with patterns in more than one member: {tp!r}")
    if origin is list:
        (item,) = get_args(tp)
        mirrored_item, check = _mirror_type(item)
        return list[mirrored_item], _all(check)  # type: ignore[valid-type]
    if origin is dict:
        key, value = get_args(tp)
        (mk, ck), (mv, cv) = _mirror_type(key), _mirror_type(value)
        return dict[mk, mv], _dict_check(ck, cv)  # type: ignore[valid-type]
    return tp, None


#: ``msgspec.Meta`` constraints that a string with a pattern never carries here.
_OTHER_META = ("gt", "ge", "lt", "le", "multiple_of", "tz")


def _all(each: Check | None) -> Check | None:
    if each is None:
        return None
    if isinstance(each, _Memo):
        good = each.good
        return lambda v: good.issuperset(v) or all(map(each, v))
    return lambda v: all(map(each, v))


def _dict_check(keys: Check | None, values: Check | None) -> Check | None:
    if keys is None and values is None:
        return None
    all_keys, all_values = _all(keys), _all(values)
    return lambda v: (
        (all_keys is None or all_keys(v)) and (all_values is None or all_values(v.values()))
    )


def _mirror(cls: type[msgspec.Struct]) -> tuple[type, Check | None]:
    """The mirror of a Struct type, and what checks its instances' patterns."""
    if cls in _mirrors:
        return _mirrors[cls], getattr(_mirrors[cls], "_check", None)
    # Only the fields whose type changes are declared again: the others, inherited, keep
    # their place and whether they are keyword-only.
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    checks: list[tuple[str, Check]] = []
    for f in msgspec.structs.fields(cls):
        tp, check = _mirror_type(f.type)
        if check is not None:
            checks.append((f.name, check))
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
    )
    check = _struct_check(tuple(checks)) if checks else None
    mirror._check = check  # type: ignore[attr-defined]
    _mirrors[cls] = mirror
    return mirror, check


def _struct_check(checks: tuple[tuple[str, Check], ...]) -> Check:
    """One check of a Struct's fields: those under one pattern read together (one
    ``attrgetter``, one ``issuperset`` of the values remembered), the others one by one."""
    by_memo: dict[_Memo, list[str]] = {}
    others: list[tuple[str, Check]] = []
    for name, one in checks:
        if isinstance(one, _Memo):
            by_memo.setdefault(one, []).append(name)
        else:
            others.append((name, one))
    flat = [
        (memo.good, memo, attrgetter(*names) if len(names) > 1 else _one_of(names[0]))
        for memo, names in by_memo.items()
    ]

    def check(value: Any) -> bool:
        for good, memo, get in flat:
            values = get(value)
            if not good.issuperset(values) and not all(map(memo, values)):
                return False
        for name, one in others:
            if not one(getattr(value, name)):
                return False
        return True

    return check


def _one_of(name: str) -> Callable[[Any], tuple[Any]]:
    get = attrgetter(name)
    return lambda value: (get(value),)


#: Each event type's mirror, and what checks its patterns.
_CHECKS: dict[type, Check | None] = dict(map(_mirror, REGISTRY.values()))
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
    Union[tuple(_mirrors[c] for c in get_args(AnyEvent))]  # noqa: UP007 - built from a tuple
)


def decode(data: bytes, subject: str) -> AnyEvent:
    """What ``codec.decode(data, subject)`` returns or raises, most of the time cheaper."""
    if len(data) > codec.MAX_EVENT_BYTES or b"\\u0000" in data:
        return codec.decode(data, subject)
    try:
        event = _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return codec.decode(data, subject)
    check = _CHECKS[type(event)]
    if check is not None and not check(event):
        return codec.decode(data, subject)
    return codec.admitted(event, data, subject)  # type: ignore[no-any-return]
