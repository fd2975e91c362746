"""A statement's rows as one JSON parameter, read back by ``jsonb_array_elements``.

asyncpg encodes an array parameter element by element (with an ABC check for each): the
batch's task update and request insert, some thirty arrays of thousands of elements, were a
quarter of the projector's CPU (py-spy). msgspec encodes the same rows in one call, each as
a JSON array (a dict per row, for ``json_to_recordset``'s objects, was another 7 % of the
rebuild's CPU), and PostgreSQL reads each element back with the type the statement
declares: timestamps as ISO text with their microseconds, floats in their shortest exact
form, so the columns hold what the arrays gave them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()


def rowset(rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` (each a sequence of values in the order of ``source``'s columns) as JSON."""
    return _encoder.encode(rows if isinstance(rows, list) else list(rows)).decode()


def tokens(values: Iterable[str]) -> str:
    """Tokens (``events.fields.Token``: letters, digits, ``_`` and ``-``) as the literal of a
    ``text[]`` column of ``source``: cast from text, where reading a JSON array took a subquery
    per row (a third of the requests' insert in PostgreSQL). Each is quoted (``NULL`` is a
    token too)."""
    return "{" + ",".join([f'"{v}"' for v in values]) + "}"


def source(columns: Sequence[tuple[str, str]], param: str = "$1") -> str:
    """The rows of a ``rowset`` in parameter ``param`` as a subquery of the columns named
    and typed (``name type``, as a table's): ``(SELECT … FROM jsonb_array_elements(…))``."""
    return (
        f"(SELECT {', '.join(_column(i, name, kind) for i, (name, kind) in enumerate(columns))}"
        f" FROM jsonb_array_elements({param}::jsonb) AS e)"
    )


def _column(i: int, name: str, kind: str) -> str:
    return f"(e->>{i})::{kind} AS {name}"
