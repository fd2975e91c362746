"""Configuration history: the diff between two task sets, and folding past diffs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from events import codec
from events.types import ConfigApplied, TaskChange, TaskDef


def diff(
    old: dict[str, TaskDef], new: dict[str, TaskDef]
) -> tuple[list[TaskDef], list[TaskChange], list[str]]:
    added = [new[k] for k in sorted(new.keys() - old.keys())]
    removed = sorted(old.keys() - new.keys())
    changed = []
    for k in sorted(new.keys() & old.keys()):
        a, b = msgspec.to_builtins(old[k]), msgspec.to_builtins(new[k])
        fields = sorted(f for f in a.keys() | b.keys() if a.get(f) != b.get(f))
        if fields:
            changed.append(TaskChange(new[k], fields))
    return added, changed, removed


def fold(events: Iterable[ConfigApplied]) -> dict[str, TaskDef]:
    """The task set in force after a sequence of applied configurations."""
    tasks: dict[str, TaskDef] = {}
    for ev in events:
        fold_one(tasks, ev)
    return tasks


def fold_one(
    tasks: dict[str, TaskDef], ev: ConfigApplied, prefer: Mapping[str, TaskDef] | None = None
) -> None:
    """Fold one applied configuration into ``tasks``; a task ``prefer`` holds under the same id
    is taken from there (the id covers all that makes the task), ``ev``'s copy left to go."""
    prefer = prefer or {}
    for t in ev.added:
        tasks[t.id] = prefer.get(t.id, t)
    for c in ev.changed:
        tasks[c.task.id] = prefer.get(c.task.id, c.task)
    for tid in ev.removed:
        tasks.pop(tid, None)


def changes_are_empty(added: list[TaskDef], changed: list[TaskChange], removed: list[str]) -> bool:
    return not (added or changed or removed)


#: Bytes a part may take: what a reader of the log accepts, less room for the part numbers.
PART_BYTES = codec.MAX_EVENT_BYTES - 4096


class TooLarge(ValueError):
    """One task, or the settings, take more than one event may hold."""


def split(event: ConfigApplied, budget: int = PART_BYTES) -> list[ConfigApplied]:
    """Split a diff into parts that each encode within ``budget`` bytes (a reader refuses a
    larger event), in order: added, changed, removed."""
    items: list[tuple[str, object]] = (
        [("added", t) for t in event.added]
        + [("changed", c) for c in event.changed]
        + [("removed", r) for r in event.removed]
    )
    empty = len(codec.encode(msgspec.structs.replace(event, added=[], changed=[], removed=[])))
    chunks: list[list[tuple[str, object]]] = [[]]
    size = empty
    for kind, item in items:
        n = len(msgspec.json.encode(item)) + 1  # and its comma
        if empty + n > budget:
            raise TooLarge(f"a task takes {n} bytes, more than an event may ({budget})")
        if size + n > budget:
            chunks.append([])
            size = empty
        chunks[-1].append((kind, item))
        size += n
    return [
        msgspec.structs.replace(
            event,
            part=i,
            parts=len(chunks),
            added=[x for k, x in chunk if k == "added"],  # type: ignore[misc]
            changed=[x for k, x in chunk if k == "changed"],  # type: ignore[misc]
            removed=[x for k, x in chunk if k == "removed"],  # type: ignore[misc]
        )
        for i, chunk in enumerate(chunks, 1)
    ]
