"""The system ``tocsin dev`` runs on this machine, for the other commands to find.

``tocsin dev`` starts NATS and PostgreSQL on the ports it is given, PostgreSQL with a password
it generated (``postgres/password``) and, with ``--secure``, NATS with credentials it generated.
It writes where they are to ``DATA_DIR/endpoints.json`` (0600: the URL holds the password), so
that a command given no ``NATS_URL`` / ``DATABASE_URL`` (``tocsin user add me``, as the README
says right after ``make run``) reaches that system, from the same directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from runtime.reach import Unreachable

#: ``tocsin dev``'s data directory unless TOCSIN_DATA_DIR says otherwise.
DEFAULT_DIR = ".tocsin"
FILE = "endpoints.json"


class Endpoints(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The embedded servers ``tocsin dev`` started (None: it used the environment's)."""

    nats_url: str | None = None
    database_url: str | None = None
    #: With ``--secure``: the credentials of ``admin``, the human operator's identity.
    nats_creds: str | None = None


def data_dir() -> Path:
    return Path(os.environ.get("TOCSIN_DATA_DIR") or DEFAULT_DIR)


def write(data: Path, endpoints: Endpoints) -> None:
    fd = os.open(data / FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an older run keeps its mode otherwise
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.encode(endpoints))


def read(data: Path) -> Endpoints | None:
    """What ``tocsin dev`` last wrote in ``data``; None when it never ran there."""
    path = data / FILE
    try:
        return msgspec.json.decode(path.read_bytes(), type=Endpoints)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError) as exc:
        raise Unreachable(
            f"cannot read {path} (where `tocsin dev` says its servers are): {exc}"
        ) from None
