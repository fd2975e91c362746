"""Lists of an event whose items are keyed hold each key once.

A task listed twice in one completion, a mount twice in one host observation, are two
answers to one question: the projector kept the first one and the scheduler the last, so
the page said ok while the alert said critical. Which one is meant cannot be known: the
contract refuses the event (``codec.decode``), and every consumer records it as a dead letter.

Every list of every event type is keyed (a test walks the types and fails on a list missing
here): what each lists is a set of tasks, locations, mounts, fields or components.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from events.types import (
    CheckCompleted,
    CheckRequested,
    ConfigApplied,
    HostObserved,
    StatusIncidentPosted,
    TaskJudged,
)

#: (where in the event, what an item is keyed by, the keys in order).
Keyed = tuple[str, str, Collection[str]]


def _config(e: ConfigApplied) -> Iterator[Keyed]:
    # A diff names a task once: added, changed or removed (``configuration.diff``).
    yield (
        "added, changed and removed",
        "task",
        [*(t.id for t in e.added), *(c.task.id for c in e.changed), *e.removed],
    )
    for t in (*e.added, *(c.task for c in e.changed)):
        yield f"locations of task {t.id}", "location", t.locations
    for c in e.changed:
        yield f"fields of changed task {c.task.id}", "field", c.fields


#: The keyed lists of each event type, by its tag (``events.lenient``'s mirrors share it).
LISTS: dict[str, Callable[[Any], Iterable[Keyed]]] = {
    "config.applied": _config,
    "check.requested": lambda e: [("checks", "task", [c.task for c in e.checks])],
    "check.completed": lambda e: [("outcomes", "task", [o.task for o in e.outcomes])],
    "task.judged": lambda e: [("judgements", "task", [j.task for j in e.judgements])],
    "host.observed": lambda e: [("filesystems", "mount", [f.mount for f in e.filesystems])],
    "status.incident": lambda e: [("components", "component", e.components)],
}

#: The types with keyed lists: the others are let through at the cost of one ``isinstance``.
TYPES = (
    ConfigApplied,
    CheckRequested,
    CheckCompleted,
    TaskJudged,
    HostObserved,
    StatusIncidentPosted,
)


#: ``LISTS``' entry of each type seen (None: it has no keyed lists), found once per type (a
#: mirror of ``events.lenient`` is a type of its own): on every event a consumer decodes.
_lists: dict[type, Callable[[Any], Iterable[Keyed]] | None] = {}


def repeated(event: Any) -> str | None:
    """Which key a keyed list of ``event`` holds twice, said as where and what; None when
    each holds its keys once."""
    try:
        lists = _lists[type(event)]
    except KeyError:
        keyed = isinstance(event, TYPES)
        lists = _lists[type(event)] = LISTS[str(event.__struct_config__.tag)] if keyed else None
    if lists is None:
        return None
    for where, what, keys in lists(event):
        if len(set(keys)) == len(keys):
            continue  # each once, told in C: the loop below only says which one is not
        seen: set[str] = set()
        for key in keys:
            if key in seen:
                return f"{where}: {what} {key[:256]!r} is listed twice"
            seen.add(key)
    return None
