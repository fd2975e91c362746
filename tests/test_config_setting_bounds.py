"""The settings of a configuration (retention, intervals, windows, thresholds, counts) are
bounded as the event contract bounds what the log holds (``events/fields.py``): an absurd
value is refused at its place, ``FILE:LINE:COL: key: …``, by ``config check`` and by
``config apply`` (before anything is published), instead of overflowing where it is used."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.fields import MAX_SECONDS, MAX_SMALL
from tests.test_config_cli import _tocsin

BODY = """\
general:
  frequency: 1m
  alerts:
    critical: [local]
{general}
websites:
  - domain: https://example.org
{website}
    paths:
      - path: /
        checks: [status-is: 200]
{top}
"""
DAYS = "999999999d"
HUGE = "99999999999999999999"
MOST_DAYS = f"at most {MAX_SECONDS / 86400:g} days"

#: id → (the lines under ``general``, under the website, at the top; the key refused; what
#: it says). The first occurrence of ``DAYS`` or ``HUGE`` in the file is the place refused.
CASES: dict[str, tuple[str, str, str, str | None, str]] = {
    "session_duration": (
        "  session_duration: " + DAYS,
        "",
        "",
        "general.session_duration",
        MOST_DAYS,
    ),
    "remember_me_duration": (
        "  remember_me_duration: " + DAYS,
        "",
        "",
        "general.remember_me_duration",
        MOST_DAYS,
    ),
    "reminder_interval": (
        "  reminder_interval: " + DAYS,
        "",
        "",
        "general.reminder_interval",
        MOST_DAYS,
    ),
    "group_window": (
        f"  channels:\n    local:\n      group_window: {DAYS}",
        "",
        "",
        "general.channels.local.group_window",
        MOST_DAYS,
    ),
    "rate_limit per": (
        f"  channels:\n    local:\n      rate_limit: {{count: 1, per: {DAYS}}}",
        "",
        "",
        "general.channels.local.rate_limit.per",
        MOST_DAYS,
    ),
    "general maintenance": (
        f"  maintenance:\n    - {{start: '02:00', days: [mon], duration: {DAYS}}}",
        "",
        "",
        "general.maintenance[0].duration",
        MOST_DAYS,
    ),
    "website maintenance": (
        "",
        f"    maintenance:\n      - {{start: '02:00', days: [mon], duration: {DAYS}}}",
        "",
        "websites[0].maintenance[0].duration",
        MOST_DAYS,
    ),
    "max_results_age": (
        "",
        "",
        f"recurring_tasks:\n  max_results_age: {DAYS}",
        "recurring_tasks.max_results_age",
        MOST_DAYS,
    ),
    "time_without_agent": (
        "",
        "",
        f"recurring_tasks:\n  time_without_agent: {DAYS}",
        "recurring_tasks.time_without_agent",
        MOST_DAYS,
    ),
    "ssl threshold": (
        "",
        "",
        f"ssl:\n  thresholds:\n    - {DAYS}: warning",
        f"ssl.thresholds[0].{DAYS}",
        MOST_DAYS,
    ),
    "host for": (
        "",
        "",
        f"hosts:\n  memory: {{critical: 95, for: {DAYS}}}",
        "hosts.memory.for",
        MOST_DAYS,
    ),
    "max_lock_seconds": (
        "",
        "",
        f"recurring_tasks:\n  max_lock_seconds: {HUGE}",
        "recurring_tasks.max_lock_seconds",
        f"expected a whole number of seconds up to {MAX_SECONDS:.0f}",
    ),
    "quorum": ("  quorum: " + HUGE, "", "", "general.quorum", f"to {MAX_SMALL}"),
    "website quorum": ("", "    quorum: " + HUGE, "", "websites[0].quorum", f"to {MAX_SMALL}"),
    "alert after": (
        f"  alerts:\n    critical: [{{channel: local, after: {HUGE}}}]",
        "",
        "",
        "general.alerts.critical[0].after",
        f"to {MAX_SMALL}",
    ),
    "rate_limit count": (
        f"  channels:\n    local:\n      rate_limit: {{count: {HUGE}, per: 1h}}",
        "",
        "",
        "general.channels.local.rate_limit.count",
        f"to {MAX_SMALL}",
    ),
    # At the bound: admitted.
    "a year of retention": ("", "", "recurring_tasks:\n  max_results_age: 1y", None, ""),
    "366 days of session": ("  remember_me_duration: 366d", "", "", None, ""),
}


def _write(tmp_path: Path, general: str, website: str, top: str) -> Path:
    body = BODY.format(general=general, website=website, top=top)
    if general.startswith("  alerts:"):  # it replaces the base's alerts
        body = body.replace("  alerts:\n    critical: [local]\n", "", 1)
    path = tmp_path / "c.yaml"
    path.write_text(body)
    return path


def _place(path: Path) -> str:
    for n, line in enumerate(path.read_text().splitlines(), 1):
        for value in (DAYS, HUGE):
            if value in line:
                return f"{n}:{line.index(value) + 1}"
    raise AssertionError("no absurd value in the file")


@pytest.mark.parametrize("command", ["check", "apply"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_absurd_setting_is_refused_at_its_place(
    tmp_path: Path, case: tuple[str, str, str, str | None, str], command: str
) -> None:
    general, website, top, key, message = case
    path = _write(tmp_path, general, website, top)
    # No NATS at this address: a refused file is refused before any connection.
    args = ["--nats-url", "nats://127.0.0.1:9"] if command == "apply" else []
    if key is None:
        if command == "check":
            done = _tocsin("config", command, str(path), *args)
            assert done.returncode == 0, done.stderr
        return
    done = _tocsin("config", command, str(path), *args)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stdout + done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"{path}:{_place(path)}: {key}: "), done.stderr
    assert message in first, done.stderr
