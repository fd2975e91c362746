"""JSON pointers (RFC 6901), used by the ``json-*`` checks."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def check(pointer: Any) -> str:
    """Validate a pointer as written in the configuration; ``ValueError`` says what is wrong."""
    if not isinstance(pointer, str):
        raise ValueError(f"expected a JSON pointer such as /status, got {pointer!r}")
    if pointer and not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/' (as in /status), got {pointer!r}")
    rest = pointer.replace("~0", "").replace("~1", "")
    if "~" in rest:
        raise ValueError(f"invalid JSON pointer {pointer!r}: '~' must be followed by 0 or 1")
    return pointer


def tokens(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def resolve(document: Any, pointer: str) -> Any:
    """The value at ``pointer``, or :data:`MISSING` when it does not resolve."""
    node = document
    for token in tokens(pointer):
        if isinstance(node, dict):
            if token not in node:
                return _MISSING
            node = node[token]
        elif isinstance(node, list):
            if not (token.isdigit() and (token == "0" or not token.startswith("0"))):
                return _MISSING
            index = int(token)
            if index >= len(node):
                return _MISSING
            node = node[index]
        else:
            return _MISSING
    return node


MISSING = _MISSING
