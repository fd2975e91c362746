"""The credentials file handed to an agent's operator (or mounted into a service).

One small JSON file, readable by a human, holding everything the process needs
to join the bus: its NKey seed, the inbox prefix its permissions allow and,
for an agent, the private key of its location that opens sealed request
secrets. It is written with mode 0600 and must be kept like a password.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

FORMAT = 1


class Credentials(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    tocsin_credentials: int
    name: str
    role: str
    nkey_seed: str
    inbox_prefix: str = "_INBOX"
    location: str | None = None
    location_key: str | None = None  # base64 X25519 private key of the location


def write(path: Path, creds: Credentials) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: the seed is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(creds)) + b"\n")
    os.chmod(path, 0o600)
    return path


def read(path: str | Path) -> Credentials:
    raw = Path(path).read_bytes()
    try:
        return msgspec.json.decode(raw, type=Credentials)
    except msgspec.DecodeError as exc:
        raise ValueError(f"{path}: not a Tocsin credentials file: {exc}") from None
