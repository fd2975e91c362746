"""How a Tocsin process authenticates to NATS: credentials file and TLS options.

Every service reads the same environment variables (``TOCSIN_NATS_CREDS``,
``TOCSIN_NATS_TLS_CA``, ``TOCSIN_NATS_TLS_CERT``, ``TOCSIN_NATS_TLS_KEY``),
so one image runs with or without authorization by its environment alone; the
agent also takes them as command-line options.
"""

from __future__ import annotations

import argparse
import os
import ssl
from dataclasses import dataclass
from typing import Any

from security import creds as credsfile
from security.sealing import Unsealer

ENV = {
    "creds": "TOCSIN_NATS_CREDS",
    "tls_ca": "TOCSIN_NATS_TLS_CA",
    "tls_cert": "TOCSIN_NATS_TLS_CERT",
    "tls_key": "TOCSIN_NATS_TLS_KEY",
}


@dataclass(frozen=True)
class ClientSecurity:
    creds: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ClientSecurity:
        env = dict(os.environ) if env is None else env
        return cls(**{k: env.get(v) or None for k, v in ENV.items()})

    def credentials(self) -> credsfile.Credentials | None:
        return credsfile.read(self.creds) if self.creds else None

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``."""
        opts: dict[str, Any] = {}
        c = self.credentials()
        if c is not None:
            opts["nkeys_seed_str"] = c.nkey_seed
            opts["inbox_prefix"] = c.inbox_prefix
        if self.tls_ca or self.tls_cert:
            opts["tls"] = self.ssl_context()
        return opts

    def ssl_context(self) -> ssl.SSLContext:
        # The server certificate is always verified (hostname included): an agent on a hostile
        # network must not hand its credentials to whoever answers on the port.
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.tls_cert:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx

    def unsealer(self) -> Unsealer | None:
        c = self.credentials()
        return Unsealer(c.location_key) if c is not None and c.location_key else None


def add_options(p: argparse.ArgumentParser) -> None:
    """The agent's ``--creds`` and ``--tls-*`` options, each also read from the environment."""
    env = os.environ.get
    p.add_argument(
        "--creds",
        default=env(ENV["creds"]),
        help=f"credentials file from `tocsin agents add` (env {ENV['creds']})",
    )
    p.add_argument(
        "--tls-ca",
        default=env(ENV["tls_ca"]),
        help=f"CA file to verify the NATS server certificate (env {ENV['tls_ca']})",
    )
    p.add_argument(
        "--tls-cert",
        default=env(ENV["tls_cert"]),
        help=f"client certificate, if the server asks for one (env {ENV['tls_cert']})",
    )
    p.add_argument(
        "--tls-key",
        default=env(ENV["tls_key"]),
        help=f"key of the client certificate (env {ENV['tls_key']})",
    )
    p.add_argument(
        "--js-domain",
        default=env("TOCSIN_JS_DOMAIN"),
        help="the hub's JetStream domain, when connecting to a leaf node (env TOCSIN_JS_DOMAIN)",
    )


def from_args(args: argparse.Namespace) -> ClientSecurity:
    return ClientSecurity(args.creds, args.tls_ca, args.tls_cert, args.tls_key)
