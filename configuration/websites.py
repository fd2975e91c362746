"""A website, or a check, declared more than once: every declaration kept, conflicts refused.

Argos 0.10.3 accepts one domain in several entries of ``websites`` (to check some paths at
another frequency, say): each entry's tasks keep that entry's settings, and a task declared
twice is checked once, with its first declaration's settings. Tocsin reads such a file so,
and drops nothing silently:

- a task's settings (frequency, recheck_delay, retry_before_notification, timeout,
  locations) are the task's own, so entries of one domain keep theirs, as in Argos, whether
  they say ``http://`` or ``https://``;
- a check declared again as it was is checked once, with a warning; declared again with
  other settings, it is refused at the second place, naming the first (Argos keeps the first
  silently: which was meant cannot be known);
- the website's own keys (alert recipients, maintenance, quorum, depends_on) are kept per
  website, its domain (host and port: what alerts, silences, maintenance and the dashboard go
  by), so the entries of one domain are merged: a key given by one entry holds for the
  website; given by two with different values, it is refused at the second, naming the
  first, as Gatus refuses a duplicate endpoint. Recipients given by one entry reach the
  tasks of the others too (Argos: that entry's tasks only): a warning says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from configuration.reader import Reader, join, plain
from configuration.yamlsource import Located, Where
from events.types import TaskDef

#: The Argos keys a website gives its alerts with: merged across entries with a warning.
RECIPIENTS = ("add_alerts_recipients", "overwrite_alerts_recipients")
ALERTING = "Tocsin alerts per website (host and port)"


@dataclass
class Website:
    """One website's own keys so far, each with where it was given first."""

    extra: dict[str, Any]
    given: dict[str, tuple[Where, str]]
    entry: tuple[Where, str]


@dataclass
class Websites:
    """The websites of one configuration by domain, merged entry by entry."""

    r: Reader
    by_domain: dict[str, Website] = field(default_factory=dict)

    def merge(self, domain: str, keys: dict[str, Any], node: Located, path: str) -> set[str]:
        """Take one entry's own keys for ``domain``; the keys it gives first (the others it
        repeats, or contradicts: refused)."""
        here = {k: (node.key_where.get(k, node.where), join(path, k)) for k in keys}
        site = self.by_domain.get(domain)
        if site is None:
            self.by_domain[domain] = Website(dict(keys), here, (node.where, path))
            return set(keys)
        taken = set()
        for key, value in keys.items():
            place, where = here[key]
            if key not in site.extra:
                site.extra[key], site.given[key] = value, here[key]
                taken.add(key)
                if key in RECIPIENTS:
                    self.r.warn(
                        place,
                        where,
                        f"{domain} is also declared at {site.entry[0]} ({site.entry[1]}): "
                        f"{ALERTING}, so these {key} reach that entry's tasks too (Argos: this "
                        "entry's only)",
                    )
            elif site.extra[key] != value:
                first, first_path = site.given[key]
                self.r.fail(
                    place,
                    where,
                    f"{domain} is declared again with another {key} than at {first} "
                    f"({first_path}): one website has one {key}",
                )
        for key in RECIPIENTS:
            if key in site.extra and key not in keys:
                first, first_path = site.given[key]
                self.r.warn(
                    node.where,
                    path,
                    f"{domain} is also declared with {key} at {first} ({first_path}): "
                    f"{ALERTING}, so they reach this entry's tasks too (Argos: that entry's only)",
                )
        return taken

    def take(
        self, domain: str, extra: dict[str, Any], node: Located, path: str
    ) -> list[tuple[str, str, Located]]:
        """Merge one entry of ``domain``; its ``depends_on`` to check (``dependencies.check``)
        when it gives its website's first (one repeating them adds none)."""
        given = node.value.get("depends_on") if isinstance(node.value, dict) else None
        keys = extra | ({"depends_on": plain(given)} if given is not None else {})
        if "depends_on" not in self.merge(domain, keys, node, path) or given is None:
            return []
        return [(domain, join(path, "depends_on"), given)]

    def extras(self) -> dict[str, dict[str, Any]]:
        """Each website's own keys, but ``depends_on``: those its checked entries replace."""
        return {
            domain: {k: v for k, v in site.extra.items() if k != "depends_on"}
            for domain, site in self.by_domain.items()
        }


def nodes(r: Reader, node: Located) -> list[tuple[str, Located]]:
    """Websites and their paths, flattening ``!include dir/*.yaml`` (one website per file)."""
    out: list[tuple[str, Located]] = []
    for i, item in enumerate(r.items(node, "websites")):
        if isinstance(item.value, list):
            out += [
                (f"websites[{i}][{j}]", x) for j, x in enumerate(item.value) if x.value is not None
            ]
        elif not item.unset:
            out.append((f"websites[{i}]", item))
    return out


class Builder:
    """Tasks of one configuration, keyed by their stable id, each with where it was declared."""

    def __init__(self, r: Reader) -> None:
        self.r = r
        self.tasks: dict[str, TaskDef] = {}
        self.pings: dict[str, str] = {}  # heartbeat UUID → the website that has it
        self.declared: dict[str, tuple[Where, str]] = {}  # task → where it was declared first
        self.said: set[tuple[Where, str]] = set()  # declarations found repeating one

    def add(self, task: TaskDef, where: Where, path: str) -> None:
        """Take ``task``, declared at ``where`` (``path``), unless it was declared before:
        then the same again is checked once (a warning), and other settings are refused."""
        first = self.tasks.get(task.id)
        if first is None:
            self.tasks[task.id] = task
            self.declared[task.id] = (where, path)
            return
        at, first_path = self.declared[task.id]
        if (where, path) in self.said:
            return  # its task of the other IP version: said once
        self.said.add((where, path))
        old, new = msgspec.to_builtins(first), msgspec.to_builtins(task)
        differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if not differ:
            self.r.warn(
                where,
                path,
                f"{task.check} of {task.url} is declared before at {at} ({first_path}): "
                "checked once",
            )
            return
        said = ", ".join(f"{k} {old.get(k)!r} there, {new.get(k)!r} here" for k in differ)
        self.r.fail(
            where,
            path,
            f"{task.check} of {task.url} is declared before at {at} ({first_path}) with "
            f"other settings ({said}): one check has one of each",
        )
