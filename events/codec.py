"""JSON encoding of events, with strict decoding.

``decode`` raises :class:`DecodeError` for anything that is not exactly one
known event at its known schema version; every consumer turns that into a
``deadletter`` event and skips the message instead of crashing.
"""

from __future__ import annotations

import msgspec

from events.types import REGISTRY, AnyEvent, Event

#: Larger payloads are refused before parsing: no legitimate event comes near it.
MAX_EVENT_BYTES = 256 * 1024

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)  # type: ignore[arg-type]


class DecodeError(ValueError):
    """The payload is not a valid event; ``str()`` says what is wrong."""


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes, subject: str = "?") -> AnyEvent:
    if len(data) > MAX_EVENT_BYTES:
        raise DecodeError(f"{subject}: payload of {len(data)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        event = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"{subject}: {_type_of(data)}: {_version_problem(data) or exc}") from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"{subject}: not a JSON event: {exc}") from None
    if event.v != event.VERSION:
        raise DecodeError(
            f"{subject}: {_type_of(data)}: schema version {event.v} is not the supported "
            f"{event.VERSION}"
        )
    return event


def excerpt(data: bytes, limit: int = 512) -> str:
    """The start of a payload as text, for dead-letter records an operator reads."""
    return data[:limit].decode("utf-8", errors="replace")


def _version_problem(data: bytes) -> str | None:
    """Say so when the payload is a known type at another schema version (a newer writer)."""
    raw = msgspec.json.decode(data)
    cls = REGISTRY.get(str(raw.get("type"))) if isinstance(raw, dict) else None
    if cls is not None and raw.get("v") != cls.VERSION:
        return f"schema version {raw.get('v')} is not the supported {cls.VERSION}"
    return None


def _type_of(data: bytes) -> str:
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return "unparsable"
    kind = raw.get("type") if isinstance(raw, dict) else None
    if isinstance(kind, str):
        return kind if kind in REGISTRY else f"unknown event type {kind!r}"
    return "event without a type"
