"""The identities of a deployment, kept in one directory (``TOCSIN_SECURITY_DIR``).

Layout::

    identities.json        every identity ever created (revoked ones stay, for audit)
    creds/<name>.creds     credentials files (0600): hand agents' to their operators
    locations/<loc>.key    a location's private sealing key (0600; goes into agents' creds)
    locations/<loc>.pub    its public key (the scheduler needs only these)
    auth.conf              the nats-server ``authorization`` block, generated

Every change rewrites ``auth.conf``; the NATS server picks it up on a config
reload (see :mod:`security.reload`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from events import subjects
from security import creds as credsfile
from security import keys, permissions, sealing
from security.serverconf import render_auth

SERVICES = ("scheduler", "projector", "web", "notifier", "admin")


class Identity(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    role: str
    public_key: str
    created: float
    location: str | None = None
    revoked: float | None = None


class _File(msgspec.Struct):
    identities: list[Identity] = []


class IdentityError(ValueError):
    pass


class Store:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory).absolute()

    @property
    def auth_conf(self) -> Path:
        return self.dir / "auth.conf"

    def creds_path(self, name: str) -> Path:
        return self.dir / "creds" / f"{name}.creds"

    # reading -------------------------------------------------------------------

    def identities(self) -> list[Identity]:
        path = self.dir / "identities.json"
        if not path.exists():
            return []
        return msgspec.json.decode(path.read_bytes(), type=_File).identities

    def active(self) -> list[Identity]:
        return [i for i in self.identities() if i.revoked is None]

    def find(self, name: str) -> Identity | None:
        return next((i for i in self.active() if i.name == name), None)

    # changing ------------------------------------------------------------------

    def init(self) -> list[Identity]:
        """Create the service identities that are missing; regenerate ``auth.conf``."""
        made = []
        for svc in SERVICES:
            if self.find(svc) is None:
                made.append(self._create(svc, svc, None))
        self.write_auth()
        return made

    def add_agent(self, name: str, location: str) -> tuple[Identity, Path]:
        subjects.check_token(name, "agent name")
        subjects.check_token(location, "location")
        if name in SERVICES:
            raise IdentityError(f"{name!r} is the name of a service identity")
        if self.find(name) is not None:
            raise IdentityError(f"agent {name!r} already exists; revoke it first to replace it")
        self.init()
        identity = self._create(name, "agent", location)
        self.write_auth()
        return identity, self.creds_path(name)

    def revoke(self, name: str) -> Identity:
        ids = self.identities()
        for i in ids:
            if i.name == name and i.revoked is None:
                if i.role != "agent":
                    raise IdentityError(f"{name!r} is a service identity; only agents are revoked")
                i.revoked = time.time()
                self._save(ids)
                # The seed file is useless now, but it is a secret: do not leave it lying around.
                self.creds_path(name).unlink(missing_ok=True)
                self.write_auth()
                return i
        raise IdentityError(f"no active agent named {name!r}")

    def location_key(self, location: str) -> str:
        """The location's private sealing key, created on first use."""
        d = self.dir / "locations"
        private = d / f"{location}.key"
        if not private.exists():
            priv, pub = sealing.new_location_key()
            d.mkdir(parents=True, exist_ok=True)
            fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(priv + "\n")
            (d / f"{location}.pub").write_text(pub + "\n")
        return private.read_text().strip()

    def write_auth(self) -> Path:

        self.dir.mkdir(parents=True, exist_ok=True)
        # Rewritten in place, not renamed over: a container bind-mounting this one file
        # keeps the inode it started with, and a renamed file (a revocation) never reaches
        # it. The reload is signalled after the write, so it reads the whole file.
        self.auth_conf.write_text(render_auth(self.active()))
        return self.auth_conf

    def _create(self, name: str, role: str, location: str | None) -> Identity:
        seed = keys.new_user_seed()
        identity = Identity(
            name=name,
            role=role,
            public_key=keys.public_key(seed),
            created=time.time(),
            location=location,
        )
        credsfile.write(
            self.creds_path(name),
            credsfile.Credentials(
                tocsin_credentials=credsfile.FORMAT,
                name=name,
                role=role,
                nkey_seed=seed,
                inbox_prefix=permissions.inbox_prefix(role, name),
                location=location,
                location_key=self.location_key(location) if location else None,
            ),
        )
        self._save([*self.identities(), identity])
        return identity

    def _save(self, ids: list[Identity]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "identities.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(_File(ids))) + b"\n")
        tmp.replace(path)
