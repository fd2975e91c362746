"""YAML read with positions: every value keeps the file, line and column it came from.

Supports Argos's ``!include FILE`` and ``!include dir/*.yaml`` (paths relative
to the including file; a glob gives a list, one document per file, sorted) and
``${NAME}`` in scalars, taken from the environment.

Problems found while reading carry the key path from the root of the main file
(``websites[2][0].paths``: the first file of the glob included as the third
website), the same path the validation in config.py uses.

Reading is bounded, because the scheduler and the web read the same file and a
hostile or broken one must not take them down: file size, bytes and files read per
configuration (an include fan-out multiplies), nesting depth and values, both counted
with aliases expanded (a billion-laughs file is a few hundred bytes), before anything is
expanded (yamlcompose.py composes libyaml's events). Includes stay in
the directory tree of the main file, plus the directories listed in
``TOCSIN_CONFIG_INCLUDE_DIRS`` (``:``-separated): ``!include /etc/shadow`` is
refused, and no message ever quotes a file's text beyond the offending key.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from configuration.yamlcompose import (
    Budget,
    Composer,
    Exhausted,
    Located,
    Problem,
    Where,
    join,
    shown,
)

__all__ = [
    "ConfigError",
    "Located",
    "Problem",
    "Where",
    "contents",
    "load",
    "read",
    "shown",
]

#: Bounds of one read. The bench's 100,000-task file (5 MB, 550,000 values) stays well below
#: each; at the bounds a read takes about 2 GB at its peak.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Bytes of every file of one read together: an include fan-out multiplies.
MAX_READ_BYTES = 32 * 1024 * 1024
MAX_FILES = 500
MAX_DEPTH = 64
#: Values and keys, once aliases are expanded.
MAX_VALUES = 2_000_000
INCLUDE_DIRS_ENV = "TOCSIN_CONFIG_INCLUDE_DIRS"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class _Read:
    """What one read carries through its files: the environment, the problems, where
    includes may go, and the budgets spent so far."""

    budget: Budget
    roots: tuple[Path, ...]
    files: int = 0
    bytes: int = 0
    stack: tuple[Path, ...] = field(default_factory=tuple)
    #: False: no places kept, equal values shared (``Composer``).
    positions: bool = True

    @property
    def problems(self) -> list[Problem]:
        return self.budget.problems


def _position(data: bytes, index: int) -> tuple[int, int]:
    """Line and column (in characters) of byte ``index``."""
    start = data.rfind(b"\n", 0, index) + 1
    column = len(data[start:index].decode("utf-8", "replace"))
    return data.count(b"\n", 0, index) + 1, column + 1


def load(path: str | Path, env: dict[str, str] | None = None) -> Located:
    """Parse ``path`` into Located values, or raise ConfigError naming file and line."""
    result, problems = read(path, env)
    if problems:
        raise ConfigError(problems)
    return result


def read(
    path: str | Path,
    env: dict[str, str] | None = None,
    positions: bool = True,
    data: bytes | None = None,
    warnings: list[Problem] | None = None,
) -> tuple[Located, list[Problem]]:
    """Parse ``path`` as far as possible: the tree, and the problems met on the way.

    Validation goes on after these problems so that one run lists them all. Without
    ``positions`` every value stands at the start of its file and equal values are one
    object: a tree a fraction of the size, for a read that reports nothing. ``data``: the
    main file's bytes, already read (``contents``). What is read but probably not meant is
    added to ``warnings``.
    """
    env = dict(os.environ) if env is None else env
    path = Path(path)
    extra = [Path(d).resolve() for d in env.get(INCLUDE_DIRS_ENV, "").split(":") if d]
    ctx = _Read(Budget(env, [], MAX_VALUES), (path.resolve().parent, *extra), positions=positions)
    root = _load_file(path, ctx, given=data)
    if warnings is not None:
        warnings += ctx.budget.warnings
    return root, ctx.problems


def contents(path: str | Path) -> bytes:
    """The main file's bytes (``-``: standard input), for a caller that reads them more than
    once: a pipe (``/dev/stdin``) gives them only to its first read. ConfigError when they
    cannot be read; a file too large is refused by ``read``."""
    source = Path("/dev/stdin") if str(path) == "-" else Path(path)
    try:
        return _read_at_most(source, MAX_FILE_BYTES + 1)
    except OSError as exc:
        where = Where(str(path), 1, 1)
        raise ConfigError(
            [Problem(where, "", f"cannot read {path}: {exc.strerror or exc}")]
        ) from None


def _bytes(
    path: Path, ctx: _Read, at: Where, keypath: str, given: bytes | None = None
) -> bytes | None:
    """The file's bytes (``given`` when read already), or None with the problem recorded
    (never quoting the file)."""
    file = str(path)
    left = MAX_READ_BYTES - ctx.bytes
    try:
        data = _read_at_most(path, min(MAX_FILE_BYTES, left) + 1) if given is None else given
    except OSError as exc:
        # Name the !include line, the file itself has no line to show.
        ctx.problems.append(Problem(at, keypath, f"cannot read {file}: {exc.strerror or exc}"))
        return None
    if len(data) > MAX_FILE_BYTES:
        ctx.problems.append(
            Problem(at, keypath, f"{file} is larger than {MAX_FILE_BYTES // 2**20} MiB")
        )
        return None
    if len(data) > left:
        message = f"the configuration's files are larger than {MAX_READ_BYTES // 2**20} MiB"
        ctx.problems.append(Problem(at, keypath, message))
        return None
    ctx.bytes += len(data)
    return data


def _read_at_most(path: Path, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``path``, by chunks: ``read(limit)`` would allocate all of
    ``limit`` for a file of a few bytes."""
    chunks, size = [], 0
    with path.open("rb") as f:
        while size < limit and (chunk := f.read(min(2**20, limit - size))):
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


def _text(
    path: Path, ctx: _Read, at: Where, keypath: str, given: bytes | None
) -> tuple[str, bytes] | None:
    """The file's text and bytes, or None with the problem recorded."""
    data = _bytes(path, ctx, at, keypath, given)
    if data is None:
        return None
    try:
        return data.decode("utf-8"), data
    except UnicodeDecodeError as exc:
        line, col = _position(data, exc.start)
        byte = data[exc.start]
        ctx.problems.append(
            Problem(Where(str(path), line, col), keypath, f"not UTF-8 text (byte {byte:#04x})")
        )
        return None


def _load_file(
    path: Path,
    ctx: _Read,
    keypath: str = "",
    included_at: Where | None = None,
    level: int = 0,
    given: bytes | None = None,
) -> Located:
    file = str(path)
    top = Where(file, 1, 1)
    at = included_at or top
    resolved = path.resolve()
    if resolved in ctx.stack:
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
    read = _text(path, ctx, at, keypath, given)
    if read is None:
        return Located(None, top, unset=True)
    text, data = read

    def include(name: str, where: Where, keypath: str, level: int) -> Located:
        return _include(path, name, where, keypath, level, ctx)

    composer = Composer(text, file, ctx.budget, include, MAX_DEPTH, keypath, level, ctx.positions)
    ctx.stack = (*ctx.stack, resolved)
    try:
        node = composer.compose()
    except Exhausted:
        return Located(None, top, unset=True)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Where(file, mark.line + 1, mark.column + 1) if mark else top
        ctx.problems.append(Problem(where, keypath, f"invalid YAML: {exc.problem or exc}"))
        return Located(None, top, unset=True)
    except yaml.reader.ReaderError as exc:
        # A character YAML refuses (NUL, other controls): its place, never the text around it.
        # libyaml gives the byte offset and the character's code.
        line, col = _position(data, exc.position)
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        ctx.problems.append(
            Problem(Where(file, line, col), keypath, f"character {char!r} not allowed")
        )
        return Located(None, top, unset=True)
    finally:
        ctx.stack = ctx.stack[:-1]
    return Located(None, top) if node is None else node


def _include(path: Path, name: str, where: Where, keypath: str, level: int, ctx: _Read) -> Located:
    """``!include name`` written in ``path``: one file, or a list of one per file of a glob."""
    pattern = str(path.parent / name)
    if glob.has_magic(name):
        files = sorted(glob.glob(pattern))
        if not files:
            # Argos reads it as no website (an empty directory of them is a valid state).
            message = f"warning: !include {name}: no file matches"
            ctx.budget.warnings.append(Problem(where, keypath, message))
        return Located(
            [_load_file(Path(f), ctx, join(keypath, i), where, level) for i, f in enumerate(files)],
            where,
        )
    return _load_file(Path(pattern), ctx, keypath, where, level - 1)
