"""A channel name Argos 0.10.3 does not know (``general.alerts.ok: [local, slack]``): Argos
accepts the file and alerts the channels it knows, ignoring the name (its
``choose_recipients``, asked here in its own venv); Tocsin reads the file too, warns at the
name's place and alerts the others. Refusing it stopped a working Argos file at the door."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from configuration import config
from services.notifier.settings import Target, from_config
from tests.argos_support import ROOT, argos_bin
from tests.test_argos_config import _file

SITE = """\
websites:
  - domain: "https://example.org"
    add_alerts_recipients: [slack, "apprise:team"]
    paths:
      - path: "/"
        checks: [status-is: 200]
"""
#: Argos's recipients for a task of the file's website, per severity.
RECIPIENTS = """
import json, os, sys
os.environ["ARGOS_YAML_FILE"] = sys.argv[1]
from argos.server.alerting import choose_recipients
from argos.server.settings import read_yaml_config

config = read_yaml_config(sys.argv[1])
site = config.websites[0]

class Task:
    add_alerts_recipients = json.dumps(site.add_alerts_recipients)
    overwrite_alerts_recipients = None

print(json.dumps({s: choose_recipients(config, Task, s) for s in ("ok", "critical")}))
"""
WARNING = (
    "warning: unknown channel 'slack': nothing is sent there (Argos ignores it too); "
    "expected local, mail, gotify, apprise:<group> or webhook:<name>"
)


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = _file(SITE).replace("    ok: [local]\n", "    ok: [local, slack]\n")
    assert "ok: [local, slack]" in text
    out = tmp_path_factory.mktemp("alerts") / "argos.yaml"
    out.write_text(text)
    return out


def test_argos_ignores_the_name(path: Path) -> None:
    done = subprocess.run(
        [str(argos_bin() / "python"), "-c", RECIPIENTS, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    want = {"local": True, "mail": False, "gotify": False, "apprise": ["team"]}
    assert json.loads(done.stdout) == {"ok": want, "critical": want}


def test_tocsin_warns_at_its_place_and_alerts_the_others(path: Path) -> None:
    cfg = config.parse(path, {})
    lines = path.read_text().splitlines()
    ok = next(i for i, line in enumerate(lines, 1) if "ok: [local, slack]" in line)
    site = next(i for i, line in enumerate(lines, 1) if "add_alerts_recipients" in line)
    assert [(w.where.line, w.path, w.message) for w in cfg.warnings] == [
        (ok, "general.alerts.ok[1]", WARNING),
        (site, "websites[0].add_alerts_recipients[0]", WARNING),
    ]
    settings = from_config(cfg)
    assert settings.alerts["ok"] == [Target("local")]
    assert settings.websites["example.org"].add["critical"] == [Target("apprise:team")]
