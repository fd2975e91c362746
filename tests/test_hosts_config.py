"""The ``hosts`` section: defaults, per-host overrides merged key by key, and every mistake
refused with FILE:LINE:COL: key.path: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from configuration import config
from configuration.hosts import DEFAULT_THRESHOLDS, FsSelect, Threshold

HEAD = """\
general:
  frequency: 1m
  alerts:
    critical: [local]
websites: []
"""


def _parse(tmp_path: Path, hosts: str) -> config.Config:
    path = tmp_path / "c.yaml"
    path.write_text(HEAD + textwrap.dedent(hosts))
    return config.parse(path, {})


def _errors(tmp_path: Path, hosts: str) -> list[str]:
    with pytest.raises(config.ConfigError) as err:
        _parse(tmp_path, hosts)
    return [str(p).replace(str(tmp_path) + "/", "") for p in err.value.problems]


def test_no_hosts_section_means_hosts_are_not_judged(tmp_path: Path):
    assert _parse(tmp_path, "").hosts is None


def test_empty_section_judges_with_the_defaults(tmp_path: Path):
    hosts = _parse(tmp_path, "hosts: {}\n").hosts
    assert hosts is not None and hosts.rules("any").thresholds == DEFAULT_THRESHOLDS


def test_overrides_merge_key_by_key(tmp_path: Path):
    hosts = _parse(
        tmp_path,
        """\
        hosts:
          disk: {warning: 75, critical: "85%"}
          memory: {critical: 97, for: 10m}
          swap: false
          retry_before_notification: 1
          filesystems: {exclude_types: [tmpfs], exclude: [/boot/efi]}
          machines:
            - agent: db1
              disk: {warning: 60}
              load: {warning: 2, critical: 4}
              filesystems: {include: ["/srv/*"]}
              maintenance:
                - {start: "2026-01-01T00:00:00+00:00", duration: 1h}
        """,
    ).hosts
    assert hosts is not None
    all_, db1 = hosts.rules("web1"), hosts.rules("db1")
    assert all_.thresholds["disk"] == Threshold(75, 85)
    assert all_.thresholds["memory"] == Threshold(90, 97, 600)
    assert all_.thresholds["swap"] == Threshold()
    assert db1.thresholds["disk"] == Threshold(60, 85)
    assert db1.thresholds["load"] == Threshold(2, 4, 300)
    assert db1.retry_before_notification == 1
    assert db1.filesystems == FsSelect(("/srv/*",), ("/boot/efi",), (), ("tmpfs",))
    assert "maintenance" in db1.alerting and "maintenance" not in all_.alerting


@pytest.mark.parametrize(
    ("hosts", "problem"),
    [
        pytest.param(
            "hosts:\n  disks: {warning: 80}\n",
            "c.yaml:7:3: hosts.disks: unknown key (did you mean 'disk'?)",
            id="unknown-metric",
        ),
        pytest.param(
            "hosts:\n  disk: {warning: 80, critcal: 90}\n",
            "c.yaml:7:23: hosts.disk.critcal: unknown key (did you mean 'critical'?)",
            id="unknown-threshold-key",
        ),
        pytest.param(
            "hosts:\n  disk: {warning: 120}\n",
            "c.yaml:7:19: hosts.disk.warning: expected a percentage from 0 to 100 such as 80 "
            "or '80%', got 120",
            id="percent-over-100",
        ),
        pytest.param(
            "hosts:\n  disk: {warning: 95, critical: 90}\n",
            "c.yaml:7:9: hosts.disk: warning (95) is above critical (90): the warning would "
            "never show",
            id="warning-above-critical",
        ),
        pytest.param(
            "hosts:\n  load: {warning: 0}\n",
            "c.yaml:7:19: hosts.load.warning: expected a load per core above 0 (1 = as many as "
            "cores), got 0",
            id="load-zero",
        ),
        pytest.param(
            "hosts:\n  memory: {critical: 95, for: soon}\n",
            "hosts.memory.for:",
            id="bad-duration",
        ),
        pytest.param(
            "hosts:\n  filesystems: {exclude: [var]}\n",
            "c.yaml:7:26: hosts.filesystems.exclude: expected mount points such as / or /srv/*, "
            "got 'var'",
            id="mount-not-a-path",
        ),
        pytest.param(
            "hosts:\n  machines:\n    - disk: {warning: 70}\n",
            "c.yaml:8:7: hosts.machines[0].agent: required key is missing",
            id="machine-without-agent",
        ),
        pytest.param(
            "hosts:\n  machines:\n    - agent: a.b\n",
            "c.yaml:8:14: hosts.machines[0].agent: agent name 'a.b' must be 1-64 letters, "
            "digits, '-' or '_' (it is a subject token)",
            id="agent-not-a-token",
        ),
        pytest.param(
            "hosts:\n  machines:\n    - agent: db1\n    - agent: db1\n",
            "c.yaml:9:14: hosts.machines[1].agent: agent 'db1' is already listed",
            id="agent-twice",
        ),
        pytest.param(
            "hosts:\n  machines:\n    - agent: db1\n      machines: []\n",
            "c.yaml:9:7: hosts.machines[0].machines: unknown key",
            id="nested-machines",
        ),
        pytest.param(
            "hosts:\n  add_alerts_recipients: {critical: [mail]}\n",
            "c.yaml:7:38: hosts.add_alerts_recipients.critical[0]: channel mail needs a "
            "general.mail section",
            id="recipient-channel-missing",
        ),
    ],
)
def test_mistakes_are_refused_with_their_place(tmp_path: Path, hosts: str, problem: str):
    found = _errors(tmp_path, hosts)
    assert any(p == problem or (problem.endswith(":") and problem in p) for p in found), found
