"""YAML read with positions: every value keeps the file, line and column it came from.

Supports Argos's ``!include FILE`` and ``!include dir/*.yaml`` (paths relative
to the including file; a glob gives a list, one document per file, sorted) and
``${NAME}`` in scalars, taken from the environment.

Problems found while reading carry the key path from the root of the main file
(``websites[2][0].paths``: the first file of the glob included as the third
website), the same path the validation in config.py uses.
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
    pass


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
    problems: list[Problem] = []
    return _load_file(Path(path), env, problems, stack=()), problems


def _load_file(
    path: Path,
    env: dict[str, str],
    problems: list[Problem],
    stack: tuple[Path, ...],
    keypath: str = "",
    included_at: Where | None = None,
) -> Located:
    file = str(path)
    top = Where(file, 1, 1)
    if path.resolve() in stack:
        problems.append(Problem(included_at or top, keypath, "!include loops back to " + file))
        return Located(None, top, unset=True)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        # Name the !include line, the file itself has no line to show.
        problems.append(
            Problem(included_at or top, keypath, f"cannot read {file}: {exc.strerror or exc}")
        )
        return Located(None, top, unset=True)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Where(file, mark.line + 1, mark.column + 1) if mark else top
        problems.append(Problem(where, keypath, f"invalid YAML: {exc.problem or exc}"))
        return Located(None, top, unset=True)
    if node is None:
        return Located(None, top)
    return _convert(node, path, env, problems, (*stack, path.resolve()), keypath)


def _join(keypath: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{keypath}[{key}]"
    return f"{keypath}.{key}" if keypath else key


def _convert(
    node: yaml.Node,
    path: Path,
    env: dict[str, str],
    problems: list[Problem],
    stack: tuple[Path, ...],
    keypath: str = "",
) -> Located:
    file = str(path)
    where = _where(node, file)
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
                    _load_file(Path(f), env, problems, stack, _join(keypath, i), where)
                    for i, f in enumerate(files)
                ],
                where,
            )
        return _load_file(Path(pattern), env, problems, stack, keypath, where)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Located] = {}
        keys: dict[str, Where] = {}
        for key_node, value_node in node.value:
            kw = _where(key_node, file)
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(Problem(kw, keypath, "YAML merge keys (<<) are not supported"))
                continue
            key = yaml.SafeLoader.construct_scalar(_Loader(""), key_node)  # type: ignore[arg-type]
            if not isinstance(key, str) or isinstance(key_node, yaml.CollectionNode):
                problems.append(Problem(kw, keypath, "a key must be a plain string"))
                continue
            if key in out:
                problems.append(Problem(kw, _join(keypath, key), "duplicate key"))
            out[key] = _convert(value_node, path, env, problems, stack, _join(keypath, key))
            keys[key] = kw
        return Located(out, where, keys)
    if isinstance(node, yaml.SequenceNode):
        return Located(
            [
                _convert(n, path, env, problems, stack, _join(keypath, i))
                for i, n in enumerate(node.value)
            ],
            where,
        )
    assert isinstance(node, yaml.ScalarNode)
    secret = False
    if node.style is None and _ENV.search(node.value) is None:
        value = _Loader("").construct_object(node)  # plain scalar: int, bool, null …
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
