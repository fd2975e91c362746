"""YAML 1.1 merge keys (``<<: *base``), as PyYAML, which Argos reads its file with, merges.

Kept apart from the composer (yamlcompose.py), which calls these for each ``<<`` of a
mapping once the mapping is composed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from checks.base import kind_of


class Node(Protocol):
    """What of the composer's ``Located`` a merge reads (the composer imports this module:
    described here, not imported back)."""

    @property
    def value(self) -> Any: ...
    @property
    def where(self) -> Any: ...
    @property
    def key_where(self) -> Mapping[str, Any]: ...
    @property
    def unset(self) -> bool: ...


N = TypeVar("N", bound=Node)
W = TypeVar("W")


def mappings(value: N) -> list[N] | str:
    """The mappings a ``<<`` brings (one, or a list of them: the first wins), or what is
    wrong with it."""
    if value.unset:  # already reported (an undefined alias)
        return []
    found = value.value if isinstance(value.value, list) else [value]
    if all(isinstance(m.value, dict) for m in found):
        return list(found)
    return f"a merge key (<<) takes a mapping or a list of mappings, got {kind_of(value.value)}"


def merge(
    merged: list[N], own: dict[str, N], own_keys: dict[str, W]
) -> tuple[dict[str, N], dict[str, W]]:
    """PyYAML's order: the merged keys first, the mapping's own keys winning over them, an
    earlier merged mapping over a later one. A merged key keeps its place in the mapping it
    comes from, so that a problem in it is reported where it is written."""
    out: dict[str, N] = {}
    keys: dict[str, W] = {}
    for m in merged:
        for key, value in m.value.items():
            if key not in own and key not in out:
                out[key] = value
                keys[key] = m.key_where.get(key, m.where)
    return {**out, **own}, {**keys, **own_keys}
