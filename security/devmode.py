"""``tocsin dev --secure``: the same stack with authorization on, from generated identities.

The embedded nats-server runs with a configuration generated from the identities
in ``<data-dir>/security``, and each service gets its own credentials file, so a
developer sees (and debugs) exactly the permissions a production deployment has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from security import reload
from security.serverconf import render_server
from security.store import Store

DEV_AGENT = "local"


@dataclass
class SecureDev:
    store: Store
    config: Path

    def apply(self, children: list[Any], env: dict[str, str]) -> None:
        """Give each child process its own identity (the local agent: ``local``)."""
        for child in children:
            name = DEV_AGENT if child.name == "agent" else child.name
            creds = self.store.creds_path(name)
            child.env = {**env, "TOCSIN_SECURITY_DIR": str(self.store.dir)}
            if creds.exists():
                child.env["TOCSIN_NATS_CREDS"] = str(creds)


def prepare(data: Path, location: str = "default") -> SecureDev:
    store = Store(data / "security")
    store.init()
    if store.find(DEV_AGENT) is None:
        store.add_agent(DEV_AGENT, location)
    config = store.dir / "server.conf"
    config.write_text(render_server("auth.conf", pid_file=reload.pid_file(store.dir)))
    return SecureDev(store, config)
