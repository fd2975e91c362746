"""`tocsin agents add|list|revoke` and `tocsin security …`: files, modes and messages."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from security import creds, keys, reload
from security.store import Store
from services.cli import main
from tests.security_support import start_secured


def test_agents_add_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "sec")
    assert main(["agents", "add", "paris-1", "--location", "eu", "--dir", d]) == 0
    path = tmp_path / "sec" / "creds" / "paris-1.creds"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    c = creds.read(path)
    assert (c.role, c.location, c.inbox_prefix) == ("agent", "eu", "_INBOX.agent.paris-1")
    assert c.location_key and keys.public_key(c.nkey_seed).startswith("U")
    auth = (tmp_path / "sec" / "auth.conf").read_text()
    assert keys.public_key(c.nkey_seed) in auth
    assert main(["agents", "add", "paris-1", "--location", "eu", "--dir", d]) == 2
    assert main(["agents", "add", "bad.name", "--location", "eu", "--dir", d]) == 2
    capsys.readouterr()
    assert main(["agents", "list", "--dir", d]) == 0
    assert "paris-1" in capsys.readouterr().out
    assert main(["agents", "revoke", "paris-1", "--dir", d]) == 0
    assert not path.exists()
    assert keys.public_key(c.nkey_seed) not in (tmp_path / "sec" / "auth.conf").read_text()
    assert main(["agents", "revoke", "scheduler", "--dir", d]) == 2
    capsys.readouterr()
    assert main(["agents", "list", "--all", "--dir", d]) == 0
    assert "revoked" in capsys.readouterr().out


def test_server_config_and_leaf_auth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "sec")
    main(["agents", "add", "paris-1", "--location", "eu", "--dir", d])
    main(["agents", "add", "nyc-1", "--location", "us", "--dir", d])
    capsys.readouterr()
    assert (
        main(["security", "server-config", "--dir", d, "--tls-cert", "s.pem", "--tls-key", "s.key"])
        == 0
    )
    out = capsys.readouterr().out
    assert 'include "auth.conf"' in out and '"cert_file": "s.pem"' in out
    assert main(["security", "leaf-auth", "--location", "eu", "--dir", d]) == 0
    out = capsys.readouterr().out
    eu = creds.read(tmp_path / "sec" / "creds" / "paris-1.creds")
    us = creds.read(tmp_path / "sec" / "creds" / "nyc-1.creds")
    assert keys.public_key(eu.nkey_seed) in out and keys.public_key(us.nkey_seed) not in out


def test_server_config_declares_the_pid_file_the_commands_signal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "sec"
    assert main(["security", "server-config", "--dir", str(d)]) == 0
    assert f"pid_file: {json.dumps(str(reload.pid_file(d)))}" in capsys.readouterr().out
    assert main(["security", "server-config", "--dir", str(d), "--pid-file", "/tmp/n.pid"]) == 0
    assert 'pid_file: "/tmp/n.pid"' in capsys.readouterr().out


def test_agents_add_and_revoke_reload_the_server_of_the_pid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bus = start_secured(tmp_path, {})
    try:
        d = str(bus.store.dir)
        pid = reload.recorded_pid(d)
        assert bus.server.proc is not None and pid == bus.server.proc.pid
        for args in (["add", "paris-1", "--location", "eu"], ["revoke", "paris-1"]):
            assert main(["agents", *args, "--dir", d]) == 0
            assert f"nats-server (pid {pid}) reloaded" in capsys.readouterr().out
    finally:
        bus.server.stop()


def test_a_stale_pid_file_is_not_signalled_and_the_hint_names_its_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "sec"
    Store(d).init()
    gone = subprocess.Popen(["true"])
    gone.wait()
    reload.pid_file(d).write_text(f"{gone.pid}\n")
    assert main(["agents", "add", "paris-1", "--location", "eu", "--dir", str(d)]) == 0
    assert f"`nats-server --signal reload={gone.pid}`" in capsys.readouterr().out


def test_auth_conf_is_rewritten_in_place(tmp_path: Path) -> None:
    """compose bind-mounts auth.conf itself: the container keeps the inode it started with, so
    a file renamed over it (a revocation) would never reach the server."""
    d = str(tmp_path / "sec")
    assert main(["agents", "add", "paris-1", "--location", "eu", "--dir", d]) == 0
    auth = tmp_path / "sec" / "auth.conf"
    inode = auth.stat().st_ino
    key = keys.public_key(creds.read(tmp_path / "sec" / "creds" / "paris-1.creds").nkey_seed)
    assert key in auth.read_text()
    assert main(["agents", "revoke", "paris-1", "--dir", d]) == 0
    assert auth.stat().st_ino == inode
    assert key not in auth.read_text()
