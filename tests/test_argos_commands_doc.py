"""docs/migrating-from-argos.md maps every command of Argos 0.10.3 (read from its own click
groups, in its venv) to what Tocsin does instead, and every Tocsin command it names exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from services import cli
from tests.argos_support import argos_bin

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "migrating-from-argos.md"
ARGOS_COMMANDS = """
import click
from argos.commands import cli

def walk(group, path):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            walk(command, path + [name])
        else:
            print(" ".join(path + [name]))

walk(cli, ["argos"])
"""


def _rows() -> dict[str, str]:
    """The commands table: Argos's command (its words in the first cell) → the Tocsin cell."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and (found := re.match(r"`(argos(?: [a-z][a-z-]*)+)", cells[0])):
            rows[found.group(1)] = cells[1]
    return rows


def _tocsin_commands(cell: str) -> list[list[str]]:
    """The subcommand words of each `tocsin …` in a cell, up to its first option or value."""
    out = []
    for code in re.findall(r"`(tocsin [^`]*)`", cell):
        words = []
        for word in code.split()[1:]:
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            words.append(word)
        out.append(words)
    return out


def test_every_argos_command_has_a_row() -> None:
    done = subprocess.run(
        [str(argos_bin() / "python"), "-c", ARGOS_COMMANDS],
        capture_output=True,
        text=True,
        check=True,
    )
    commands = done.stdout.split("\n")[:-1]
    assert "argos server reload-config" in commands
    assert sorted(set(commands) - set(_rows())) == []


@pytest.mark.parametrize("argos", sorted(_rows()))
def test_the_tocsin_commands_named_exist(argos: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser, _ = cli.build_parser()
    for words in _tocsin_commands(_rows()[argos]):
        with pytest.raises(SystemExit) as done:  # its help, or the usage and 2
            parser.parse_args([*words, "--help"])
        assert done.value.code == 0, (words, capsys.readouterr().err)
