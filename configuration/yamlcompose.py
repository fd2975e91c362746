"""YAML events to Located values in one pass: libyaml's parser, the project's composer.

libyaml (PyYAML's C parser) makes the events; composing them here rather than with
PyYAML's composer keeps every value's file, line and column, and builds the Located tree
directly, without a tree of ``yaml.Node`` in between (a 100,000-task file made 550,000 of
them, the most of the read's time and memory).

The bounds are enforced as the events come, before anything is expanded: nesting depth,
and the number of values (keys included) once aliases are expanded. An alias is not
expanded at all: it is the anchored value itself, shared, with its size and depth counted
once per anchor, so a billion-laughs file is refused after a few hundred events.

Without positions (``Composer(positions=False)``) the places are not kept and equal values
are one object: the tree of that 100,000-task file takes 21 MB instead of 132.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

# libyaml's parser, in every wheel of the pinned PyYAML (pyproject.toml).
from yaml._yaml import CParser as _Events
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from configuration import yamlmerge

ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"
#: Strings up to this length are interned: keys, check names, expected values repeat in
#: every entry of a large file, and the tasks keep them.
INTERN_MAX = 64


@dataclass(frozen=True, slots=True)
class Where:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(slots=True)
class Problem:
    where: Where
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.path or '(top)'}: {self.message}"


#: The key places of a value that is not a mapping: one shared empty mapping, not a dict per
#: scalar.
NO_KEYS: Mapping[str, Where] = MappingProxyType({})


@dataclass(slots=True)
class Located:
    """A YAML value and where it stands. Mappings hold Located values keyed by str.

    An alias is the anchored Located itself (shared, never copied): nothing may change a
    Located once composed."""

    value: Any
    where: Where
    key_where: Mapping[str, Where] = field(default_factory=lambda: NO_KEYS)
    secret: bool = False
    #: Already reported (an unset ${NAME}, an !include that failed): validating the value
    #: would only repeat the problem.
    unset: bool = False


class Exhausted(Exception):
    """The read's value budget is spent (the problem is recorded): stop composing."""


@dataclass(slots=True)
class _Anchor:
    value: Located
    size: int  # values (and keys) it stands for, aliases inside expanded
    depth: int  # levels it spans, aliases inside expanded
    raw: str | None  # a scalar's text, for an alias used as a key


class Budget:
    """What the whole read (every file) may still compose, and where problems go."""

    def __init__(self, env: dict[str, str], problems: list[Problem], max_values: int) -> None:
        self.env = env
        self.problems = problems
        #: What is read but probably not meant (an ``!include`` glob matching no file).
        self.warnings: list[Problem] = []
        self.max_values = max_values
        self.values = 0
        self.exhausted = False

    def spend(self, n: int, where: Where, keypath: str) -> None:
        self.values += n
        if self.values > self.max_values or self.exhausted:
            if not self.exhausted:
                self.exhausted = True
                message = f"more than {self.max_values} values once aliases are expanded"
                self.problems.append(Problem(where, keypath, message))
            raise Exhausted


#: ``include(name, where, keypath, level)``: the Located of an ``!include`` (its files are
#: composed with the same budget).
Include = Callable[[str, Where, str, int], Located]


def join(keypath: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{keypath}[{key}]"
    return f"{keypath}.{key}" if keypath else key


class Composer:
    """One file's events into Located values; ``level`` is the nesting it starts at (an
    included file continues its includer's nesting)."""

    def __init__(
        self,
        text: str,
        file: str,
        budget: Budget,
        include: Include,
        max_depth: int,
        keypath: str = "",
        level: int = 0,
        positions: bool = True,
    ) -> None:
        # Any: the stubs type libyaml's events and marks as optional everywhere.
        self.events: Any = _Events(text)
        self.file = file
        self.budget = budget
        self.include = include
        self.max_depth = max_depth
        self.keypath = keypath
        self.level = level
        self.anchors: dict[str, _Anchor] = {}
        self.open_anchors: dict[str, Where] = {}
        #: False: a first read, repeated with positions only when it finds something to
        #: report (``config.parse``). Every value then stands at the file's start, and equal
        #: values are one object: the 50,000 alike ``checks`` of a 100,000-task file are
        #: composed into one, and its tree takes a sixth of the memory.
        self.positions = positions
        self.start = Where(file, 1, 1)
        #: Without positions: each value composed, by what makes it (``_same``) …
        self.same: dict[Any, Located] = {}
        #: … the ids of those met more than once (a value holding one met once is unique) …
        self.repeated: set[int] = set()
        #: … and one key places' mapping per set of keys.
        self.key_sets: dict[tuple[str, ...], dict[str, Where]] = {}
        self.resolver = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()

    def compose(self) -> Located | None:
        """The document's value (None for an empty file). Raises ``yaml.YAMLError`` on
        invalid YAML and :class:`Exhausted` once the budget is spent."""
        events = self.events
        events.get_event()  # stream start
        if events.check_event(StreamEndEvent):
            return None
        events.get_event()  # document start
        value = self._node(self.level + 1, self.keypath)[0]
        events.get_event()  # document end
        if not events.check_event(StreamEndEvent):
            extra = events.get_event()
            raise yaml.composer.ComposerError(
                None, None, "expected a single document in the stream", extra.start_mark
            )
        return value

    def _where(self, event: Any) -> Where:
        if not self.positions:
            return self.start
        mark = event.start_mark
        return Where(self.file, mark.line + 1, mark.column + 1)

    def _problem(self, where: Where, keypath: str, message: str) -> Located:
        self.budget.problems.append(Problem(where, keypath, message))
        return Located(None, where, unset=True)

    def _node(self, level: int, keypath: str) -> tuple[Located, int, int]:
        """The next value, with its expanded size and depth."""
        event: Any = self.events.peek_event()
        if level > self.max_depth:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {self.max_depth} levels", event.start_mark
            )
        self.events.get_event()
        where = self._where(event)
        if isinstance(event, AliasEvent):
            return self._alias(str(event.anchor), where, level, keypath)
        anchor = event.anchor
        if anchor is not None:
            self._anchor(anchor, event, None)
            self.open_anchors[anchor] = where
        raw = None
        if isinstance(event, ScalarEvent):
            raw = event.value
            before = self.budget.values
            self.budget.spend(1, where, keypath)
            located = self._scalar(event, where, level, keypath)
            # An !include counts what its files hold.
            size, depth = self.budget.values - before, 1
        elif isinstance(event, SequenceStartEvent):
            located, size, depth = self._sequence(where, level, keypath)
        else:
            assert isinstance(event, MappingStartEvent)
            located, size, depth = self._mapping(where, level, keypath)
        if not self.positions:
            located = self._same(located)
        if anchor is not None:
            del self.open_anchors[anchor]
            self.anchors[anchor] = _Anchor(located, size, depth, raw)
        return located, size, depth

    def _anchor(self, name: str, event: Any, done: _Anchor | None) -> None:
        """Check a new anchor's name (PyYAML refuses one defined twice); record it if
        ``done``."""
        if name in self.anchors or name in self.open_anchors:
            raise yaml.composer.ComposerError(
                None, None, f"found duplicate anchor {name!r}", event.start_mark
            )
        if done is not None:
            self.anchors[name] = done

    def _alias(self, name: str, where: Where, level: int, keypath: str) -> tuple[Located, int, int]:
        anchor = self.anchors.get(name)
        if anchor is None:
            if name in self.open_anchors:
                # Reported where the value it is in starts.
                at = self.open_anchors[name]
                return self._problem(at, keypath, "an alias refers to the value it is in"), 1, 1
            message = f"invalid YAML: found undefined alias {name!r}"
            return self._problem(where, keypath, message), 1, 1
        if level - 1 + anchor.depth > self.max_depth:
            message = f"nested deeper than {self.max_depth} levels once aliases are expanded"
            return self._problem(where, keypath, message), 1, 1
        self.budget.spend(anchor.size, where, keypath)
        return anchor.value, anchor.size, anchor.depth

    def _sequence(self, where: Where, level: int, keypath: str) -> tuple[Located, int, int]:
        self.budget.spend(1, where, keypath)
        items: list[Located] = []
        size, depth = 1, 0
        while not self.events.check_event(SequenceEndEvent):
            value, n, d = self._node(level + 1, join(keypath, len(items)))
            items.append(value)
            size, depth = size + n, max(depth, d)
        self.events.get_event()
        return Located(items, where), size, depth + 1

    def _mapping(self, where: Where, level: int, keypath: str) -> tuple[Located, int, int]:
        self.budget.spend(1, where, keypath)
        out: dict[str, Located] = {}
        keys: dict[str, Where] = {}
        size, depth = 1, 0
        merged: list[Located] = []
        while not self.events.check_event(MappingEndEvent):
            key_event = self.events.peek_event()
            kw = self._where(key_event)
            self.budget.spend(1, kw, keypath)
            if self._is_merge(key_event):
                self.events.get_event()
                value, n, d = self._node(level + 1, keypath)
                size, depth = size + n + 1, max(depth, d)
                found = yamlmerge.mappings(value)
                if isinstance(found, str):
                    self._problem(value.where, keypath, found)
                else:
                    merged += found
                continue
            key = self._key(key_event, level, keypath)
            value, n, d = self._node(level + 1, join(keypath, key or "?"))
            size, depth = size + n + 1, max(depth, d)
            if key is None:
                continue
            if key in out:
                self._problem(kw, join(keypath, shown(key)), "duplicate key")
            out[key] = value
            keys[key] = kw
        self.events.get_event()
        out, keys = yamlmerge.merge(merged, out, keys) if merged else (out, keys)
        if not self.positions:
            keys = self.key_sets.setdefault(tuple(keys), keys)
        return Located(out, where, keys), size, depth + 1

    def _is_merge(self, event: Any) -> bool:
        """A plain ``<<`` key: YAML 1.1's merge key, which Argos's loader (PyYAML) follows."""
        if not isinstance(event, ScalarEvent) or event.style:
            return False
        tag = event.tag
        if tag in (None, "!"):
            tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        return bool(tag == MERGE_TAG)

    def _same(self, located: Located) -> Located:
        """The value equal to ``located`` composed before, else ``located`` (kept to be
        found again). Collections are looked up only when every value they hold was met
        before: a key of ids costs more than a value met once."""
        value = located.value
        key: Any
        if isinstance(value, dict | list):
            held = value.values() if isinstance(value, dict) else value
            if not all(id(v) in self.repeated for v in held):
                return located
            # A mapping's keys (str), then the ids (int) of what it holds.
            kind = ("{", *value) if isinstance(value, dict) else ("[",)
            key = (*kind, *map(id, held))
        elif type(value) is str and not (located.secret or located.unset):
            key = value  # the string itself, no tuple per unique path of a large file
        elif value is None or type(value) in (str, int, bool):
            key = (type(value), value, located.secret, located.unset)
        else:
            return located  # floats (-0.0 == 0.0), dates …: not worth it
        found = self.same.setdefault(key, located)
        if found is not located:
            self.repeated.add(id(found))
        return found

    def _key(self, event: Any, level: int, keypath: str) -> str | None:
        """The key ``event`` starts (consumed), or None with the problem recorded."""
        kw = self._where(event)
        raw: str | None = None
        if isinstance(event, ScalarEvent):
            self.events.get_event()
            raw = event.value
            tag = event.tag
            if tag in (None, "!"):
                tag = self.resolver.resolve(yaml.ScalarNode, raw, event.implicit)
            if event.anchor is not None:
                self._anchor(event.anchor, event, _Anchor(Located(raw, kw), 1, 1, raw))
        elif isinstance(event, AliasEvent) and event.anchor in self.anchors:
            self.events.get_event()
            raw = self.anchors[event.anchor].raw
        else:  # a collection or a dangling alias: composed, then refused
            self._node(level + 1, keypath)
        if raw is None:
            self._problem(kw, keypath, "a key must be a plain string")
            return None
        return sys.intern(raw)

    def _scalar(self, event: Any, where: Where, level: int, keypath: str) -> Located:
        value = event.value
        if event.tag == "!include":
            if not value:
                return self._problem(where, keypath, "!include takes a file name or a glob")
            return self.include(value, where, keypath, level)
        if not event.style and ENV.search(value) is None:  # plain: int, bool, null …
            tag = event.tag
            if tag in (None, "!"):
                tag = self.resolver.resolve(yaml.ScalarNode, value, event.implicit)
            if tag == STR_TAG:
                return Located(sys.intern(value) if len(value) <= INTERN_MAX else value, where)
            construct = self.constructor.yaml_constructors.get(tag)
            if construct is None:
                return self._problem(where, keypath, f"unknown tag {shown(str(tag))}")
            node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark)
            try:
                return Located(construct(self.constructor, node), where)
            except (yaml.YAMLError, ValueError, TypeError):
                return self._problem(where, keypath, f"not a valid {tag.rsplit(':', 1)[-1]}")
        env = self.budget.env
        missing = [name for name in ENV.findall(value) if name not in env]
        for name in missing:
            self._problem(where, keypath, f"environment variable {name} is not set")
        if ENV.search(value):
            value = ENV.sub(lambda m: env.get(m.group(1), ""), value)
            return Located(value, where, secret=True, unset=bool(missing))
        return Located(value, where)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def shown(key: str) -> str:
    """A key as an error may quote it: a plain name as is, anything else only described.
    A file included by mistake (a password file, a key) must not reach a log line."""
    return key if _PLAIN_KEY.fullmatch(key) else f"<a key of {len(key)} characters>"
