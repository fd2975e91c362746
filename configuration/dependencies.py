"""``depends_on``: a website names the websites or paths it cannot work without.

An entry is a website as its ``domain`` is written (``https://db.example.org``, or the host
alone, ``db.example.org``), or one path of a website (``https://proxy.example.org/health``):
every task of that website or path is a dependency of every task of the dependant. Entries
are checked against the tasks of the same file, and a cycle (a → b → a) is an error at the
entry that closes it. Pure functions: the configuration checks with them, the notifier and
the web resolve with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlsplit

from configuration.reader import Reader, join, text
from configuration.yamlsource import Located, Where
from events.types import TaskDef


class Target(Protocol):
    """What an entry is matched against: a task definition, or a read-model row's fields."""

    @property
    def id(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def url(self) -> str: ...


def targets(entry: str, tasks: Iterable[Target]) -> set[str]:
    """The ids of the tasks an entry names (empty: it names nothing of this configuration)."""
    parts = urlsplit(entry if "://" in entry else f"//{entry}")
    whole = parts.path in ("", "/") and not parts.query
    out = set()
    for t in tasks:
        if t.domain != parts.netloc:
            continue
        if whole or t.url.rstrip("/") == entry.rstrip("/"):
            out.add(t.id)
    return out


def resolve(depends: dict[str, list[str]], tasks: dict[str, TaskDef]) -> dict[str, set[str]]:
    """Each task → the tasks it depends on, from each website's (``domain``) entries."""
    by_domain: dict[str, set[str]] = {}
    for domain, entries in depends.items():
        found: set[str] = set()
        for e in entries:
            found |= targets(e, tasks.values())
        by_domain[domain] = found
    return {t.id: by_domain[t.domain] - {t.id} for t in tasks.values() if by_domain.get(t.domain)}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (``[a, b, a]``), or None: a depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def blocked_by(
    task: str, deps: dict[str, set[str]], severities: dict[str, str], names: dict[str, str]
) -> list[str]:
    """The dependencies of ``task`` that are not ok now, by name (sorted, each once).

    A dependency never judged yet is not a reason to hold anything back."""
    return sorted({names.get(d, d) for d in deps.get(task, ()) if severities.get(d, "ok") != "ok"})


def name_of(t: TaskDef) -> str:
    """How a dependency is named to an operator: its URL, or its domain if a bare target."""
    return t.url


def check(
    r: Reader, entries: list[tuple[str, str, Located]], tasks: dict[str, TaskDef]
) -> dict[str, list[str]]:
    """Validate ``depends_on`` of each website (``(domain, key path, node)``): unknown
    entries and cycles are problems at their line. Returns each domain's entries."""
    out: dict[str, list[str]] = {}
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], tuple[Where, str]] = {}
    for domain, path, node in entries:
        for i, item in enumerate(r.items(node, path)):
            ipath = join(path, i)
            entry = r.convert(item, ipath, text)
            if not isinstance(entry, str):
                continue
            found = targets(entry, tasks.values())
            owners = {tasks[t].domain for t in found}
            if not found:
                r.fail(item.where, ipath, f"{entry!r} names no website nor path of this file")
                continue
            if owners == {domain}:
                r.fail(item.where, ipath, f"{entry!r} is this website: it cannot depend on itself")
                continue
            out.setdefault(domain, []).append(entry)
            for owner in owners - {domain}:
                edges.setdefault(domain, set()).add(owner)
                where.setdefault((domain, owner), (item.where, ipath))
    loop = cycle(edges)
    if loop:
        at, ipath = where[(loop[-2], loop[-1])]
        r.fail(at, ipath, "dependency cycle: " + " → ".join(loop))
    return out
