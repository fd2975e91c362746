"""Real nats-server processes with authorization (and TLS) on, for the security tests."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from events import codec, subjects
from events.types import CheckRequested, CheckSpec, RequestData
from runtime.embedded import NatsServer
from security import reload
from security.client import ClientSecurity
from security.serverconf import Leafnodes, Tls, render_server
from security.store import Store


@dataclass
class SecuredBus:
    store: Store
    server: NatsServer
    tls: Tls | None = None

    @property
    def url(self) -> str:
        return self.server.url.replace("nats://", "tls://") if self.tls else self.server.url

    def security(self, name: str, **tls: str) -> ClientSecurity:
        return ClientSecurity(creds=str(self.store.creds_path(name)), **tls)


def start_secured(
    tmp: Path,
    agents: dict[str, str],
    tls: Tls | None = None,
    leafnodes: Leafnodes | None = None,
    js_domain: str | None = None,
) -> SecuredBus:
    """A nats-server whose config is generated from a fresh security directory."""
    store = Store(tmp / "security")
    store.init()
    for name, location in agents.items():
        store.add_agent(name, location)
    conf = tmp / "server.conf"
    auth = os.path.relpath(store.auth_conf, tmp)
    conf.write_text(
        render_server(
            auth,
            tls=tls,
            leafnodes=leafnodes,
            pid_file=reload.pid_file(store.dir),
            js_domain=js_domain,
        )
    )
    server = NatsServer(tmp / "nats", config=conf).start()
    return SecuredBus(store, server, tls)


@dataclass
class Recorder:
    """A client's asynchronous errors: that is how the server reports a permission refusal."""

    errors: list[str] = field(default_factory=list)
    disconnects: int = 0

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc))

    async def on_disconnect(self) -> None:
        self.disconnects += 1

    async def refused(self, what: str, timeout: float = 30.0) -> str:
        """The server's refusal of ``what``; it comes asynchronously, late on a loaded machine."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.errors:
                if "permissions violation" in e.lower() and what.lower() in e.lower():
                    return e
            await asyncio.sleep(0.05)
        raise AssertionError(f"no permissions violation for {what!r}; errors: {self.errors}")


async def connect(
    url: str, security: ClientSecurity, rec: Recorder | None = None, **kw: Any
) -> Client:
    rec = rec or Recorder()
    return await nats.connect(
        url,
        error_cb=rec.on_error,
        disconnected_cb=rec.on_disconnect,
        # nats-py retries a refused first connect forever with 0 attempts
        allow_reconnect=kw.pop("allow_reconnect", False),
        max_reconnect_attempts=kw.pop("max_reconnect_attempts", 1),
        # A TLS handshake and a JWT check take more than 3 s on a loaded machine.
        connect_timeout=kw.pop("connect_timeout", 10),
        **security.connect_options(),
        **kw,
    )


def request_event(
    location: str,
    group: str,
    url: str,
    n: int = 0,
    kind: str = "status-is",
    expected: Any = 200,
    data: RequestData | None = None,
) -> tuple[str, bytes, str]:
    request = f"{group}.{location}.{n}"
    ev = CheckRequested(
        at=time.time(),
        request=request,
        group=group,
        location=location,
        url=url,
        method="GET",
        ip_version=4,
        timeout=10,
        due=time.time(),
        checks=[CheckSpec(f"{group}-t", kind, expected)],
        request_data=data,
    )
    return subjects.requested(location, group), codec.encode(ev), f"request.{request}"
