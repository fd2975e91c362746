"""Configuration history: the diff between two task sets, and folding past diffs."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

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
        for t in ev.added:
            tasks[t.id] = t
        for c in ev.changed:
            tasks[c.task.id] = c.task
        for tid in ev.removed:
            tasks.pop(tid, None)
    return tasks


def changes_are_empty(added: list[TaskDef], changed: list[TaskChange], removed: list[str]) -> bool:
    return not (added or changed or removed)


def split(event: ConfigApplied, per_part: int = 1000) -> list[ConfigApplied]:
    """Split a large diff into parts that each fit in one NATS message."""
    items: list[tuple[str, object]] = (
        [("added", t) for t in event.added]
        + [("changed", c) for c in event.changed]
        + [("removed", r) for r in event.removed]
    )
    chunks = [items[i : i + per_part] for i in range(0, len(items), per_part)] or [[]]
    parts = []
    for n, chunk in enumerate(chunks, 1):
        parts.append(
            msgspec.structs.replace(
                event,
                part=n,
                parts=len(chunks),
                added=[x for k, x in chunk if k == "added"],  # type: ignore[misc]
                changed=[x for k, x in chunk if k == "changed"],  # type: ignore[misc]
                removed=[x for k, x in chunk if k == "removed"],  # type: ignore[misc]
            )
        )
    return parts
