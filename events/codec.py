"""JSON encoding of events, with strict decoding.

``decode`` raises :class:`DecodeError` for anything that is not exactly one
known event at its known schema version, within the bounds of its fields and of
the type its subject admits (``events.contract``); it raises nothing else,
whatever the bytes. Every consumer turns that into a dead letter and skips the
message instead of crashing.
"""

from __future__ import annotations

from typing import Any

import msgspec

from events import contract, keyed
from events.types import REGISTRY, AnyEvent, Event

#: Larger payloads are refused before parsing: no legitimate event comes near it.
MAX_EVENT_BYTES = 256 * 1024

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)  # type: ignore[arg-type]


class DecodeError(ValueError):
    """The payload is not a valid event; ``str()`` says what is wrong."""


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def encode_admitted(event: Event, subject: str) -> bytes:
    """``event`` encoded, once decoded back as every consumer decodes it on ``subject``:
    DecodeError saying why when the contract refuses it. A writer of ours checks its own
    event with it before publishing, so that nothing it writes ends as a dead letter."""
    data = encode(event)
    decode(data, subject)
    return data


def decode(data: bytes, subject: str) -> AnyEvent:
    """The event ``data`` holds, as published on ``subject``; DecodeError for anything else."""
    if len(data) > MAX_EVENT_BYTES:
        raise DecodeError(f"{subject}: payload of {len(data)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        event = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"{subject}: {_type_of(data)}: {_version_problem(data) or exc}") from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        # msgspec raises RecursionError on JSON nested thousands deep, and UnicodeDecodeError
        # (not its own error) on a string whose bytes are not UTF-8.
        raise DecodeError(f"{subject}: not a JSON event: {exc}") from None
    return admitted(event, data, subject)


def admitted(event: AnyEvent, data: bytes, subject: str) -> AnyEvent:
    """``event``, decoded from ``data``, if its version, its subject and its values (free-form
    ones, an apply's settings) admit it; DecodeError otherwise."""
    if event.v != event.VERSION:
        raise DecodeError(
            f"{subject}: {_type_of(data)}: schema version {event.v} is not the supported "
            f"{event.VERSION}"
        )
    found = contract.problem(subject, event)
    if found is None and isinstance(event, contract.FREE_FORM):
        found = contract.content_problem(event)
    found = found or keyed.repeated(event)
    if found:
        raise DecodeError(f"{subject}: {_type_of(data)}: {found}")
    return event


def excerpt(data: bytes, limit: int = 512) -> str:
    """The start of a payload as text, for dead-letter records an operator reads (NUL shown
    as U+FFFD: a dead letter must itself be storable)."""
    return data[:limit].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


class _Head(msgspec.Struct):
    """What an error message says of a payload: its type and version. Decoded apart, every
    other field skipped unread: a field out of range (``1e400``) does not hide the type."""

    type: Any = None
    v: Any = None


class _Type(msgspec.Struct):
    type: Any = None


def _head(data: bytes, of: type[_Head] | type[_Type] = _Head) -> _Head | _Type | None:
    """The payload's type and version (only its type when the version does not read), or
    None when neither does (not a JSON object, nesting too deep): only used to word an error,
    never to raise one."""
    try:
        return msgspec.json.decode(data, type=of)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return _head(data, _Type) if of is _Head else None


def _version_problem(data: bytes) -> str | None:
    """Say so when the payload is a known type at another schema version (a newer writer)."""
    head = _head(data)
    cls = REGISTRY.get(str(head.type)) if isinstance(head, _Head) else None
    if isinstance(head, _Head) and cls is not None and head.v != cls.VERSION:
        return f"schema version {str(head.v)[:20]} is not the supported {cls.VERSION}"
    return None


def _type_of(data: bytes) -> str:
    head = _head(data)
    kind = head.type if head is not None else None
    if isinstance(kind, str):
        return kind if kind in REGISTRY else f"unknown event type {kind[:64]!r}"
    return "event without a type"
