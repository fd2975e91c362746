"""YAML read with positions: every value keeps the file, line and column it came from.

Supports Argos's ``!include FILE`` and ``!include dir/*.yaml`` (paths relative
to the including file; a glob gives a list, one document per file, sorted) and
``${NAME}`` in scalars, taken from the environment.

Problems found while reading carry the key path from the root of the main file
(``websites[2][0].paths``: the first file of the glob included as the third
website), the same path the validation in config.py uses.

Reading is bounded, because the scheduler and the web read the same file and a
hostile or broken one must not take them down: file size, files read per
configuration (an include fan-out multiplies), nesting depth, and values after
alias expansion (a billion-laughs file is a few hundred bytes). Includes stay in
the directory tree of the main file, plus the directories listed in
``TOCSIN_CONFIG_INCLUDE_DIRS`` (``:``-separated): ``!include /etc/shadow`` is
refused, and no message ever quotes a file's text beyond the offending key.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: Bounds of one read. A real configuration of ten thousand tasks stays far below each.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILES = 500
MAX_DEPTH = 64
MAX_VALUES = 200_000
INCLUDE_DIRS_ENV = "TOCSIN_CONFIG_INCLUDE_DIRS"


@dataclass(frozen=True)
class Where:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class Problem:
    where: Where
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.path or '(top)'}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Located:
    """A YAML value and where it stands. Mappings hold Located values keyed by str."""

    value: Any
    where: Where
    key_where: dict[str, Where] = field(default_factory=dict)
    secret: bool = False
    #: Already reported (an unset ${NAME}, an !include that failed): validating the value
    #: would only repeat the problem.
    unset: bool = False


class _Loader(yaml.SafeLoader):
    """PyYAML's composer recurses once per level: refuse depth before Python's stack does."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.depth -= 1


@dataclass
class _Read:
    """What one read carries through its files: the environment, the problems, where
    includes may go, and the budgets spent so far."""

    env: dict[str, str]
    problems: list[Problem]
    roots: tuple[Path, ...]
    #: One constructor for the scalars of the read (a loader per scalar costs more than
    #: the scalar).
    constructor: yaml.constructor.SafeConstructor = field(
        default_factory=yaml.constructor.SafeConstructor
    )
    files: int = 0
    values: int = 0
    exhausted: bool = False
    #: Nodes being converted: an alias met again inside itself refers to itself.
    open_nodes: set[int] = field(default_factory=set)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def shown(key: str) -> str:
    """A key as an error may quote it: a plain name as is, anything else only described.
    A file included by mistake (a password file, a key) must not reach a log line."""
    return key if _PLAIN_KEY.fullmatch(key) else f"<a key of {len(key)} characters>"


def _position(text: str | bytes, index: int) -> tuple[int, int]:
    nl = "\n" if isinstance(text, str) else b"\n"
    line = text.count(nl, 0, index) + 1  # type: ignore[arg-type]
    return line, index - (text.rfind(nl, 0, index) + 1) + 1  # type: ignore[arg-type]


def _where(node: yaml.Node, file: str) -> Where:
    return Where(file, node.start_mark.line + 1, node.start_mark.column + 1)


def load(path: str | Path, env: dict[str, str] | None = None) -> Located:
    """Parse ``path`` into Located values, or raise ConfigError naming file and line."""
    result, problems = read(path, env)
    if problems:
        raise ConfigError(problems)
    return result


def read(path: str | Path, env: dict[str, str] | None = None) -> tuple[Located, list[Problem]]:
    """Parse ``path`` as far as possible: the tree, and the problems met on the way.

    Validation goes on after these problems so that one run lists them all.
    """
    env = dict(os.environ) if env is None else env
    path = Path(path)
    extra = [Path(d).resolve() for d in env.get(INCLUDE_DIRS_ENV, "").split(":") if d]
    ctx = _Read(env, [], (path.resolve().parent, *extra))
    return _load_file(path, ctx, stack=()), ctx.problems


def _text(path: Path, ctx: _Read, at: Where, keypath: str) -> str | None:
    """The file's text, or None with the problem recorded (never quoting the file)."""
    file = str(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        # Name the !include line, the file itself has no line to show.
        ctx.problems.append(Problem(at, keypath, f"cannot read {file}: {exc.strerror or exc}"))
        return None
    if len(data) > MAX_FILE_BYTES:
        ctx.problems.append(
            Problem(at, keypath, f"{file} is larger than {MAX_FILE_BYTES // 2**20} MiB")
        )
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position(data, exc.start)
        byte = data[exc.start]
        ctx.problems.append(
            Problem(Where(file, line, col), keypath, f"not UTF-8 text (byte {byte:#04x})")
        )
        return None


def _load_file(
    path: Path,
    ctx: _Read,
    stack: tuple[Path, ...],
    keypath: str = "",
    included_at: Where | None = None,
) -> Located:
    file = str(path)
    top = Where(file, 1, 1)
    at = included_at or top
    resolved = path.resolve()
    if resolved in stack:
        ctx.problems.append(Problem(at, keypath, "!include loops back to " + file))
        return Located(None, top, unset=True)
    if included_at is not None and not any(resolved.is_relative_to(r) for r in ctx.roots):
        ctx.problems.append(
            Problem(
                at,
                keypath,
                f"!include {file}: outside the configuration's directory "
                f"(list more directories in {INCLUDE_DIRS_ENV})",
            )
        )
        return Located(None, top, unset=True)
    ctx.files += 1
    if ctx.files > MAX_FILES:
        if ctx.files == MAX_FILES + 1:
            ctx.problems.append(Problem(at, keypath, f"more than {MAX_FILES} files included"))
        return Located(None, top, unset=True)
    text = _text(path, ctx, at, keypath)
    if text is None:
        return Located(None, top, unset=True)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Where(file, mark.line + 1, mark.column + 1) if mark else top
        ctx.problems.append(Problem(where, keypath, f"invalid YAML: {exc.problem or exc}"))
        return Located(None, top, unset=True)
    except yaml.reader.ReaderError as exc:
        # A character YAML refuses (NUL, other controls): its place, never the text around it.
        line, col = _position(text, exc.position)
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        ctx.problems.append(
            Problem(Where(file, line, col), keypath, f"character {char!r} not allowed")
        )
        return Located(None, top, unset=True)
    if node is None:
        return Located(None, top)
    return _convert(node, path, ctx, (*stack, resolved), keypath)


def _join(keypath: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{keypath}[{key}]"
    return f"{keypath}.{key}" if keypath else key


def _convert(
    node: yaml.Node, path: Path, ctx: _Read, stack: tuple[Path, ...], keypath: str = ""
) -> Located:
    where = _where(node, str(path))
    ctx.values += 1
    if ctx.values > MAX_VALUES:
        if not ctx.exhausted:
            ctx.exhausted = True
            ctx.problems.append(
                Problem(where, keypath, f"more than {MAX_VALUES} values once aliases are expanded")
            )
        return Located(None, where, unset=True)
    if id(node) in ctx.open_nodes:
        ctx.problems.append(Problem(where, keypath, "an alias refers to the value it is in"))
        return Located(None, where, unset=True)
    ctx.open_nodes.add(id(node))
    try:
        return _convert_node(node, path, ctx, stack, keypath, where)
    finally:
        ctx.open_nodes.discard(id(node))


def _convert_node(
    node: yaml.Node, path: Path, ctx: _Read, stack: tuple[Path, ...], keypath: str, where: Where
) -> Located:
    file, env, problems = str(path), ctx.env, ctx.problems
    if node.tag == "!include":
        if not isinstance(node, yaml.ScalarNode) or not node.value:
            problems.append(Problem(where, keypath, "!include takes a file name or a glob"))
            return Located(None, where, unset=True)
        pattern = str(path.parent / node.value)
        if glob.has_magic(node.value):
            files = sorted(glob.glob(pattern))
            if not files:
                problems.append(Problem(where, keypath, f"!include {node.value}: no file matches"))
            return Located(
                [
                    _load_file(Path(f), ctx, stack, _join(keypath, i), where)
                    for i, f in enumerate(files)
                ],
                where,
            )
        return _load_file(Path(pattern), ctx, stack, keypath, where)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Located] = {}
        keys: dict[str, Where] = {}
        for key_node, value_node in node.value:
            kw = _where(key_node, file)
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(Problem(kw, keypath, "YAML merge keys (<<) are not supported"))
                continue
            key = ctx.constructor.construct_scalar(key_node)  # type: ignore[arg-type]
            if not isinstance(key, str) or isinstance(key_node, yaml.CollectionNode):
                problems.append(Problem(kw, keypath, "a key must be a plain string"))
                continue
            if key in out:
                problems.append(Problem(kw, _join(keypath, shown(key)), "duplicate key"))
            out[key] = _convert(value_node, path, ctx, stack, _join(keypath, key))
            keys[key] = kw
        return Located(out, where, keys)
    if isinstance(node, yaml.SequenceNode):
        return Located(
            [_convert(n, path, ctx, stack, _join(keypath, i)) for i, n in enumerate(node.value)],
            where,
        )
    assert isinstance(node, yaml.ScalarNode)
    secret = False
    if node.style is None and _ENV.search(node.value) is None:
        value = ctx.constructor.construct_object(node)  # plain scalar: int, bool, null …
    else:
        value = node.value
        missing = [name for name in _ENV.findall(value) if name not in env]
        for name in missing:
            problems.append(Problem(where, keypath, f"environment variable {name} is not set"))
        if _ENV.search(value):
            secret = True
            value = _ENV.sub(lambda m: env.get(m.group(1), ""), value)
        return Located(value, where, secret=secret, unset=bool(missing))
    return Located(value, where, secret=secret)
