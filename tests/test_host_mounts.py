"""Mount points whose names are not UTF-8: the agent reports them with the odd bytes escaped,
and the rest of its host with them. One such mount once made every observation of the host
unpublishable ("surrogates not allowed"), and the host never appeared.

The real case mounts tmpfs filesystems in a mount namespace of its own (nothing outside it
changes); it is skipped only where namespaces cannot be made, and fails then when CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from events import codec, subjects
from events.types import HostObserved
from services.agent.host import shown
from tests.helpers import unavailable_here

ROOT = Path(__file__).resolve().parent.parent
ODD = b"bad\xffname"

#: Mounts two tmpfs in "$1" (one named ODD), then prints the observation of this host as the
#: agent publishes it (checked by the contract first).
SETUP = (
    'set -e; mkdir "$1/ok" "$1/$(printf \'bad\\377name\')"; '
    'mount -t tmpfs tmpfs "$1/ok"; mount -t tmpfs tmpfs "$1/$(printf \'bad\\377name\')"; '
    'echo ready; exec "$2" -c "$3" "$1"'
)
OBSERVE = """
import sys
from events import codec, subjects
from services.agent.host import FsFilter, HostOptions, observe
opts = HostOptions(filesystems=FsFilter(include=(sys.argv[1] + "/*",)))
event = observe("a1", "l1", opts, set())
sys.stdout.write(codec.encode_admitted(event, subjects.host_observed("a1", "l1")).decode())
"""


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        pytest.param(b"/srv/data", "/srv/data", id="ascii-kept"),
        pytest.param("/srv/données".encode(), "/srv/données", id="utf-8-kept"),
        pytest.param(b"/tmp/" + ODD, "/tmp/bad\\xffname", id="invalid-byte-escaped"),
        pytest.param(b"/caf\xe9", "/caf\\xe9", id="latin-1-name-escaped"),
        pytest.param(b"/a\\b", "/a\\b", id="backslash-kept"),
    ],
)
def test_a_name_is_shown_as_utf_8_text(raw: bytes, text: str) -> None:
    assert shown(os.fsdecode(raw)) == text


def test_a_mount_point_that_is_not_utf_8_is_reported_escaped() -> None:
    with tempfile.TemporaryDirectory(prefix="tocsin-mounts-") as tmp:
        proc = subprocess.run(
            ["unshare", "--mount", "sh", "-c", SETUP, "sh", tmp, sys.executable, OBSERVE],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    if not proc.stdout.startswith("ready\n"):
        message = f"mount namespaces unavailable here ({proc.stderr.strip()}): run as root"
        unavailable_here(message)
    assert proc.returncode == 0, proc.stderr
    subject = subjects.host_observed("a1", "l1")
    event = codec.decode(proc.stdout.removeprefix("ready\n").encode(), subject)
    assert isinstance(event, HostObserved)
    mounts = {fs.mount: fs for fs in event.filesystems}
    assert {f"{tmp}/ok", f"{tmp}/bad\\xffname"} <= set(mounts)
    assert mounts[f"{tmp}/bad\\xffname"].fstype == "tmpfs"
    assert mounts[f"{tmp}/bad\\xffname"].size_bytes > 0
