"""`tocsin agents add|list|revoke` and `tocsin security …`: files, modes and messages."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from security import creds, keys
from services.cli import main


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
