"""``tocsin agents add|list|revoke`` and ``tocsin security init|server-config``.

``tocsin agent`` (singular) *runs* an agent; ``tocsin agents`` (plural) manages
the identities of the fleet, on the machine that holds the security directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from security import reload as reloading
from security.serverconf import Tls, render_auth, render_server
from security.store import IdentityError, Store

DEFAULT_DIR = ".tocsin/security"


def _add_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir",
        default=os.environ.get("TOCSIN_SECURITY_DIR", DEFAULT_DIR),
        help="security directory: identities, credentials, keys, auth.conf "
        "(env TOCSIN_SECURITY_DIR; default %(default)s)",
    )


def register(sub: Any) -> dict[str, Callable[[Any], int]]:
    p = sub.add_parser(
        "agents",
        help="manage agent identities (add, list, revoke)",
        description="Create, list and revoke agent identities. Each change "
        "regenerates auth.conf and asks the local nats-server to reload it.",
    )
    asub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = asub.add_parser("add", help="create an agent identity and write its credentials file")
    a.add_argument("name")
    a.add_argument("--location", required=True, help="the location whose work it takes")
    _add_dir(a)
    a = asub.add_parser("list", help="list agent identities")
    a.add_argument("--all", action="store_true", help="include revoked ones")
    _add_dir(a)
    a = asub.add_parser("revoke", help="revoke an agent: it is cut off at the next reload")
    a.add_argument("name")
    _add_dir(a)

    p = sub.add_parser("security", help="service identities and the NATS server configuration")
    ssub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = ssub.add_parser("init", help="create the service identities and auth.conf")
    _add_dir(s)
    s = ssub.add_parser("server-config", help="print a nats-server config including auth.conf")
    _add_dir(s)
    s.add_argument("--tls-cert", help="server certificate (enables TLS)")
    s.add_argument("--tls-key", help="server certificate key")
    s.add_argument("--tls-ca", help="CA of client certificates (with --verify-clients)")
    s.add_argument("--verify-clients", action="store_true", help="require client certificates")
    s.add_argument(
        "--auth-path",
        help="path of auth.conf relative to the printed config "
        "(default auth.conf: save the output beside it)",
    )
    s.add_argument(
        "--pid-file",
        help="where nats-server writes its pid (default: nats-server.pid in the security "
        "directory, which `agents add|revoke` signal to reload; in a container, a path of the "
        "container's such as /tmp/nats-server.pid)",
    )
    s = ssub.add_parser(
        "leaf-auth",
        help="print the auth.conf of a site's leaf node: only the agents of its location",
    )
    _add_dir(s)
    s.add_argument("--location", required=True)
    return {"agents": cmd_agents, "security": cmd_security}


def _reload_note(store: Store) -> str:
    pid = reloading.reload(store.dir)
    if pid is not None:
        return f"nats-server (pid {pid}) reloaded {store.auth_conf}"
    # A bare ``--signal reload`` fails as soon as two nats-servers run on the host.
    recorded = reloading.recorded_pid(store.dir)
    return (
        f"{store.auth_conf} updated; make NATS reload it: `docker compose kill -s HUP nats` "
        f"or `nats-server --signal reload={recorded or 'PID'}`"
    )


def cmd_agents(args: Any) -> int:
    store = Store(args.dir)
    try:
        if args.action == "add":
            identity, creds = store.add_agent(args.name, args.location)
            print(f"agent {identity.name} (location {identity.location}) created")
            print(f"credentials: {creds}  (hand it to the agent's operator; keep it secret)")
            print(
                f"run: tocsin agent --name {identity.name} --location {identity.location} "
                f"--creds {creds.name} --nats-url tls://HUB:4222 --tls-ca ca.pem"
            )
            print(_reload_note(store))
        elif args.action == "revoke":
            identity = store.revoke(args.name)
            print(f"agent {identity.name} revoked")
            print(_reload_note(store))
        else:
            rows = store.identities() if args.all else store.active()
            for i in rows:
                if i.role != "agent":
                    continue
                when = dt.datetime.fromtimestamp(i.created, dt.UTC).strftime("%Y-%m-%d %H:%M")
                state = "revoked" if i.revoked else "active"
                print(f"{i.name:24} {i.location or '':12} {state:8} {when}  {i.public_key}")
    except (IdentityError, ValueError) as exc:
        print(f"tocsin agents: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_security(args: Any) -> int:
    store = Store(args.dir)
    if args.action == "init":
        made = store.init()
        for i in made:
            print(f"{i.role} identity created: {store.creds_path(i.name)}")
        print(f"{store.auth_conf} written")
        return 0
    if args.action == "leaf-auth":
        sys.stdout.write(render_auth([i for i in store.active() if i.location == args.location]))
        return 0
    tls = None
    if args.tls_cert:
        tls = Tls(
            Path(args.tls_cert),
            Path(args.tls_key),
            Path(args.tls_ca) if args.tls_ca else None,
            args.verify_clients,
        )
    store.init()
    auth = args.auth_path or "auth.conf"
    pid = Path(args.pid_file) if args.pid_file else reloading.pid_file(store.dir)
    sys.stdout.write(render_server(auth, tls=tls, pid_file=pid))
    return 0
