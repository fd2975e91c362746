"""`tocsin config check FILE`, as an operator runs it: exit 0 and a summary, or 2 and errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "argos.yaml"


def _tocsin(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def test_valid_file_exits_0_with_a_summary():
    done = _tocsin("config", "check", str(EXAMPLE), EXAMPLE_HOST="status.example.org:443")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:7] == [
        f"{EXAMPLE}: valid",
        "  websites:       3",
        "  paths:          5",
        "  tasks:          17",
        "  request groups: 5",
        "  every 1m: 14 tasks",
        "  every 5m: 3 tasks",
    ]


def test_misspelled_key_exits_2_naming_its_line(tmp_path: Path):
    bad = tmp_path / "argos.yaml"
    bad.write_text(EXAMPLE.read_text().replace("        method: POST", "        methode: POST"))
    done = _tocsin("config", "check", str(bad), EXAMPLE_HOST="status.example.org:443")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{bad}:64:9: websites[0].paths[1].methode: unknown key (did you mean 'method'?)"
    ]


def test_every_error_on_its_own_line(tmp_path: Path):
    done = _tocsin("config", "check", str(EXAMPLE))  # EXAMPLE_HOST unset: three errors
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{EXAMPLE}:{line}:13: websites[{i}].domain: environment variable EXAMPLE_HOST is not set"
        for i, line in enumerate((47, 79, 82))
    ]


ONE_SITE = """\
general: {{frequency: 1m}}
websites:
  - domain: {domain}
    paths:
      - path: /
        checks: {checks}
"""
TCP_SITE = "general: {frequency: 1m}\nwebsites:\n  - domain: tcp://example.org:22\n    checks: []\n"
NO_CHECKS = "warning: no checks: nothing is checked here"
NO_TOKEN = (
    "warning: no token: `tocsin argos` refuses every Argos agent (401); write the agents' "
    "tokens here (`tocsin argos` reads them again on SIGHUP)"
)

#: (id, the file, the exit status, what follows ``FILE:`` on stderr).
CASES = [
    (
        "path-checks-empty-list",
        ONE_SITE.format(domain="https://example.org", checks="[]"),
        0,
        f"6:17: websites[0].paths[0].checks: {NO_CHECKS}",
    ),
    (
        "path-checks-left-empty",  # Argos refuses it too
        ONE_SITE.format(domain="https://example.org", checks=""),
        2,
        "6:16: websites[0].paths[0].checks: expected a list of checks, got nothing",
    ),
    ("target-checks-empty-list", TCP_SITE, 0, f"4:13: websites[0].checks: {NO_CHECKS}"),
    (
        "service-secrets-left-empty",  # Argos's own example: `tocsin argos` would refuse all
        ONE_SITE.format(domain="https://example.org", checks="[status-is: 200]")
        + "service:\n  secrets:\n",
        0,
        f"8:11: service.secrets: {NO_TOKEN}",
    ),
    (
        "service-secrets-empty-list",
        ONE_SITE.format(domain="https://example.org", checks="[status-is: 200]")
        + "service:\n  secrets: []\n",
        0,
        f"8:12: service.secrets: {NO_TOKEN}",
    ),
    (
        "label-starting-with-a-hyphen",
        ONE_SITE.format(domain="https://-bad-.org", checks="[status-is: 200]"),
        2,
        "3:13: websites[0].domain: the host name's label '-bad-' starts or ends with a hyphen",
    ),
]


@pytest.mark.parametrize(
    ("text", "status", "said"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_what_check_says_of_a_file(tmp_path: Path, text: str, status: int, said: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    done = _tocsin("config", "check", str(path))
    assert done.returncode == status, done.stderr
    assert done.stderr.splitlines() == [f"{path}:{said}"]


def test_a_file_on_standard_input_is_read_once(tmp_path: Path):
    """A file with a warning is read again for its places: a pipe gave nothing the second time."""
    text = ONE_SITE.format(domain="https://192.0.2.1", checks="[status-is: 200]")
    for name in ("/dev/stdin", "-"):
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "config", "check", name],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{name}: valid\n")
        assert done.stderr.splitlines() == [
            f"{name}:3:13: websites[0].domain: warning: an IPv4 address: checked over IPv4 only"
        ]
