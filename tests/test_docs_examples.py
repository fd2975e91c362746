"""Every configuration example of the docs passes `tocsin config check`, and
docs/monitors.md shows every target scheme and every check kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from checks import CATALOGUE
from configuration import targets
from services import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def _examples() -> list[tuple[str, str]]:
    """(``file#n``, text) of each ```yaml block that is a configuration (has websites)."""
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        for n, block in enumerate(BLOCK.findall(doc.read_text()), 1):
            if re.search(r"^websites:", block, re.MULTILINE):
                found.append((f"{doc.name}#{n}", block))
    return found


EXAMPLES = _examples()


@pytest.mark.parametrize(("where", "text"), [pytest.param(w, t, id=w) for w, t in EXAMPLES])
def test_example_passes_config_check(where, text, tmp_path, capsys):
    path = tmp_path / "example.yaml"
    path.write_text(text)
    code = cli.main(["config", "check", str(path)])
    out = capsys.readouterr()
    assert code == 0, f"{where}: {out.err}"
    assert "valid" in out.out


def test_monitors_doc_shows_every_scheme_and_kind():
    text = "".join(t for w, t in EXAMPLES if w.startswith("monitors.md"))
    for scheme in targets.SCHEMES:
        assert f"domain: {scheme}://" in text, scheme
    beyond = {k for k, m in CATALOGUE.items() if not m.SCHEMES & {"http", "https"}}
    for kind in beyond:
        assert f"- {kind}:" in text, kind
