"""A real OpenLDAP server (Debian's ``slapd``) on a free loopback port, from a generated
configuration and directory. Skipped only where slapd is missing and CI is unset."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.embedded import free_port

SUFFIX = "dc=example,dc=org"
ADMIN = f"cn=admin,{SUFFIX}"
READER = f"uid=reader,ou=users,{SUFFIX}"
PASSWORDS = {"reader": "reader-pw", "alice": "alice-pw", "bob": "bob-pw"}

CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
database mdb
suffix "{suffix}"
rootdn "{admin}"
rootpw admin-pw
directory {dir}/db
"""


def _ldif() -> str:
    out = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Ex\n",
        f"dn: ou=users,{SUFFIX}\nobjectClass: organizationalUnit\nou: users\n",
    ]
    for uid, pw in PASSWORDS.items():
        out.append(
            f"dn: uid={uid},ou=users,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {uid}\nsn: {uid}\nuserPassword: {pw}\n"
        )
    return "\n".join(out)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ldap://127.0.0.1:PORT`` of a directory holding reader, alice and bob."""
    binary = shutil.which("slapd") or (
        "/usr/sbin/slapd" if Path("/usr/sbin/slapd").exists() else None
    )
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("slapd is missing: .ci/run installs Debian's slapd")
        pytest.skip("slapd is not installed (apt-get install slapd)")
    here = tmp_path_factory.mktemp("slapd")
    (here / "db").mkdir()
    conf = here / "slapd.conf"
    conf.write_text(CONF.format(dir=here, suffix=SUFFIX, admin=ADMIN))
    (here / "data.ldif").write_text(_ldif())
    slapadd = str(Path(binary).with_name("slapadd"))
    subprocess.run(
        [slapadd, "-f", str(conf), "-l", str(here / "data.ldif")], check=True, capture_output=True
    )
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    # -d: stay in the foreground (the fixture owns the process); 0: no debug output.
    proc = subprocess.Popen(
        [binary, "-f", str(conf), "-h", url + "/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=(here / "slapd.log").open("w"),
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            assert proc.poll() is None, (here / "slapd.log").read_text()
            assert time.monotonic() < deadline, "slapd did not start"
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)
