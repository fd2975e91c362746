"""The bounded field types every event is made of, and the base of every event.

Bounds of every field: what a decoder admits is exactly what a reader can fold. A value
outside them (an infinite number, a date in the year 30000, a NUL byte PostgreSQL refuses, a
list of a million items) is a broken or hostile writer, and the event a dead letter.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

#: The pattern of text without NUL (which PostgreSQL refuses).
NO_NUL = r"^[^\x00]*$"
#: 2000-01-01 .. 2100-01-01 (Unix seconds): when a fact of Tocsin can have happened.
EARLIEST, LATEST = 946_684_800.0, 4_102_444_800.0
Timestamp = Annotated[float, msgspec.Meta(ge=EARLIEST, le=LATEST)]
#: A certificate may legitimately run until 9999.
FarTimestamp = Annotated[float, msgspec.Meta(ge=0.0, le=253_402_300_799.0)]
#: The longest duration or delay an event holds (the configuration reader refuses longer).
MAX_SECONDS = 366 * 86400.0
#: A duration or a delay, in seconds: up to a year.
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_SECONDS)]
Millis = Annotated[float, msgspec.Meta(ge=0.0, le=1e10)]
#: A finite measured value (a certificate's remaining seconds may be negative).
Value = Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)]
#: Counters and stream sequences: exact in a float and in PostgreSQL's bigint.
MAX_COUNT = 2**53
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
#: The largest small count an event holds (retries before a notification …).
MAX_SMALL = 1_000_000
#: Integers of a free-form value (or of the settings) beyond this are no JSON every reader
#: reads alike, nor a PostgreSQL bigint.
INT64 = 2**63
Small = Annotated[int, msgspec.Meta(ge=0, le=MAX_SMALL)]
HttpStatus = Annotated[int, msgspec.Meta(ge=0, le=999)]
IpVersion = Annotated[int, msgspec.Meta(ge=4, le=6)]
#: A name that is also a subject token (agent, location, group, task): see events.subjects.
Token = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Name = Annotated[str, msgspec.Meta(max_length=256, pattern=NO_NUL)]
Url = Annotated[str, msgspec.Meta(max_length=8192, pattern=NO_NUL)]
MAX_TEXT = 65536
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT, pattern=NO_NUL)]
Headers = Annotated[dict[Name, Text], msgspec.Meta(max_length=256)]
MAX_ITEMS = 10_000
#: What an observer of a target beyond HTTP saw: a few named values of plain JSON.
Facts = Annotated[dict[Name, Any], msgspec.Meta(max_length=64)]

Severity = Literal["ok", "warning", "critical", "unknown"]
Status = Literal["success", "failure", "error"]
SEVERITIES: tuple[Severity, ...] = ("ok", "warning", "critical", "unknown")


class Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every event: ``at`` is when the fact happened (Unix seconds)."""

    VERSION: ClassVar[int] = 1
    v: int = 1
    at: Timestamp
