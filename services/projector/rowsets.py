"""A statement's rows as one JSON parameter, read back by ``json_to_recordset``.

asyncpg encodes an array parameter element by element (with an ABC check for each): the
batch's task update and request insert, some thirty arrays of thousands of elements, were a
quarter of the projector's CPU (py-spy). msgspec encodes the same rows as JSON objects in
one call, and PostgreSQL reads them back with the types the statement declares: timestamps
as ISO text with their microseconds, floats in their shortest exact form, so the columns
hold what the arrays gave them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()


def rowset(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` (values in the order of ``columns``) as the JSON ``json_to_recordset`` reads."""
    return _encoder.encode([dict(zip(columns, row, strict=True)) for row in rows]).decode()


def record(columns: Sequence[tuple[str, str]]) -> str:
    """The column definition list of ``json_to_recordset(…) AS u(…)``: ``name type, …``."""
    return ", ".join(f"{name} {kind}" for name, kind in columns)
