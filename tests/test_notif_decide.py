"""Table tests of the notifier's pure decisions: should we notify, whom, is it silenced."""

from __future__ import annotations

import pytest

from configuration.maintenance import parse_windows
from events.types import SilenceAdded
from services.notifier.decide import TaskState, Told, decide, decide_no_agent
from services.notifier.routing import channels_for, mail_addresses
from services.notifier.settings import NotifySettings, Target, WebsiteRouting, targets
from services.notifier.silences import why_silent

ALERTS = {
    "ok": [Target("mail")],
    "warning": [Target("mail")],
    "critical": [Target("mail"), Target("apprise:oncall", after=3)],
    "unknown": [Target("mail")],
}


def T(sev: str) -> list[Target]:
    return ALERTS.get(sev, [])


C = Told("critical", 100.0)


@pytest.mark.parametrize(
    ("severity", "failures", "at", "retry", "told", "reminder", "silenced", "want", "told_after"),
    [
        # first failure, no retry: the team hears at once; on-call waits for 3
        ("critical", 1, 100, 0, {}, None, False, [("mail", "alert")], {"mail"}),
        # retry_before_notification 2: alert on the 3rd consecutive failure, not before
        ("critical", 2, 100, 2, {}, None, False, [], set()),
        (
            "critical",
            3,
            100,
            2,
            {},
            None,
            False,
            [("mail", "alert"), ("apprise:oncall", "alert")],
            {"mail", "apprise:oncall"},
        ),
        # already told, same severity: nothing (no reminder configured)
        ("critical", 2, 200, 0, {"mail": C}, None, False, [], {"mail"}),
        # escalation reached later
        (
            "critical",
            3,
            200,
            0,
            {"mail": C},
            None,
            False,
            [("apprise:oncall", "alert")],
            {"mail", "apprise:oncall"},
        ),
        # severity change while failing: told again
        ("warning", 4, 200, 0, {"mail": C}, None, False, [("mail", "alert")], {"mail"}),
        # reminders: not before the interval, then one
        ("critical", 2, 150, 0, {"mail": C}, 60.0, False, [], {"mail"}),
        ("critical", 2, 160, 0, {"mail": C}, 60.0, False, [("mail", "reminder")], {"mail"}),
        # recovery after an alert; none when nobody was told
        ("ok", 0, 300, 0, {"mail": C}, None, False, [("mail", "recovery")], set()),
        ("ok", 0, 300, 0, {}, None, False, [], set()),
        # silenced: nothing, and what was told stays as it was (alert resumes after)
        ("critical", 9, 300, 0, {}, None, True, [], set()),
        ("ok", 0, 300, 0, {"mail": C}, None, True, [], {"mail"}),
    ],
)
def test_decide(severity, failures, at, retry, told, reminder, silenced, want, told_after):
    intents, after = decide(
        severity, failures, at, retry, T, TaskState(1, told), reminder, silenced
    )
    assert [(i.channel, i.kind) for i in intents] == want
    assert set(after) == told_after


def test_recovery_skips_an_escalated_channel_that_was_never_told():
    alerts = {**ALERTS, "ok": [Target("mail"), Target("apprise:oncall")]}
    intents, _ = decide("ok", 0, 1, 0, lambda s: alerts.get(s, []), TaskState(1, {"mail": C}))
    assert [i.channel for i in intents] == ["mail"]
    assert intents[0].previous == "critical"


def test_consecutive_only_a_success_restarts_the_count():
    """failures comes from the scheduler: fail, ok, fail is 1, 0, 1; with retry 1 no alert."""
    state = TaskState()
    sent = []
    for sev, failures in [("critical", 1), ("ok", 0), ("critical", 1), ("ok", 0)]:
        intents, state.told = decide(sev, failures, 1, 1, T, state)
        sent += intents
    assert sent == []


@pytest.mark.parametrize(
    ("last_seen", "now", "alerted", "want"),
    [
        (None, 50, False, None),  # started 0, limit 100: not yet
        (None, 100, False, "no_agent"),
        (10, 200, True, None),  # still missing, already alerted: never repeated
        (190, 200, True, "agents_back"),
        (190, 200, False, None),
    ],
)
def test_no_agent(last_seen, now, alerted, want):
    assert decide_no_agent(last_seen, 0.0, now, 100.0, alerted) == want


@pytest.mark.parametrize(
    ("last_seen", "now", "alerted", "want"),
    [
        # The notifier restarted at 1000 (limit 100); its agents last reported at 10, before.
        pytest.param(10, 1050, False, None, id="downtime-is-not-the-agents-silence"),
        pytest.param(10, 1100, False, "no_agent", id="silent-for-the-limit-after-restart"),
        pytest.param(1020, 1100, False, None, id="reported-since-restart"),
        pytest.param(1020, 1120, False, "no_agent", id="silent-for-the-limit-after-a-report"),
        # Raised before the restart: lowered only when an agent reports, never by the restart.
        pytest.param(None, 1050, True, None, id="alerted-no-heartbeat-in-the-log"),
        pytest.param(10, 1050, True, None, id="alerted-last-heartbeat-before-restart"),
        pytest.param(1040, 1050, True, "agents_back", id="alerted-an-agent-reports"),
    ],
)
def test_no_agent_after_a_notifier_restart(last_seen, now, alerted, want):
    assert decide_no_agent(last_seen, 1000.0, now, 100.0, alerted) == want


@pytest.mark.parametrize(
    ("site", "severity", "want"),
    [
        (None, "critical", ["mail", "apprise:oncall"]),
        (
            WebsiteRouting(add={"critical": [Target("gotify")]}),
            "critical",
            ["mail", "apprise:oncall", "gotify"],
        ),
        (WebsiteRouting(overwrite={"critical": [Target("local")]}), "critical", ["local"]),
        (
            WebsiteRouting(overwrite={"warning": [Target("local")]}),
            "critical",
            ["mail", "apprise:oncall"],
        ),
        (
            WebsiteRouting(add={"critical": [Target("mail", 7)]}),
            "critical",
            ["mail", "apprise:oncall"],
        ),
    ],
)
def test_channels_for(site, severity, want):
    s = NotifySettings(alerts=ALERTS, websites={"a.org": site} if site else {})
    assert [t.channel for t in channels_for(s, "a.org", severity)] == want


@pytest.mark.parametrize(
    ("site", "want"),
    [
        (None, ["ops@x"]),
        (WebsiteRouting(add_mail=["web@x", "ops@x"]), ["ops@x", "web@x"]),
        (WebsiteRouting(overwrite_mail=["only@x"]), ["only@x"]),
    ],
)
def test_mail_addresses(site, want):
    s = NotifySettings(mail={"addresses": ["ops@x"]}, websites={"a.org": site} if site else {})
    assert mail_addresses(s, "a.org") == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (["local", "mail"], [Target("local"), Target("mail")]),
        ([{"channel": "apprise:oncall", "after": 10}], [Target("apprise:oncall", 10)]),
        # Argos accepts a name of no channel kind and sends nothing there: so does Tocsin.
        (["sms"], []),
        (["local", "slack"], [Target("local")]),
        (["apprise:"], ValueError),
        ([{"channel": "mail", "after": -1}], ValueError),
        ([{"channel": "mail", "afer": 2}], ValueError),
    ],
)
def test_targets(raw, want):
    if want is ValueError:
        with pytest.raises(ValueError):
            targets(raw, "general.alerts.critical")
    else:
        assert targets(raw, "x") == want


# 2025-06-01 was a Sunday; 00:30 UTC is 02:30 in Paris (summer time).
SUNDAY_0030_UTC = 1748737800.0
WINDOWS = parse_windows(
    [
        {
            "days": ["sun"],
            "start": "02:00",
            "duration": "1h",
            "tz": "Europe/Paris",
            "reason": "backups",
        },
        {"start": "2025-07-14T10:00", "duration": "30m"},
    ]
)


@pytest.mark.parametrize(
    ("at", "silences", "site_windows", "want"),
    [
        (SUNDAY_0030_UTC, {}, [], "maintenance window: backups"),
        (SUNDAY_0030_UTC + 3600, {}, [], None),  # 03:30 Paris: over
        (SUNDAY_0030_UTC + 86400, {}, [], None),  # Monday
        (1752487200.0 + 60, {}, [], "maintenance window"),  # one-off, 2025-07-14 10:01 UTC
        (
            1000.0,
            {
                "s1": SilenceAdded(
                    at=0, id="s1", starts=900, ends=1100, reason="deploy", by="me", domain="a.org"
                )
            },
            [],
            "silence s1: deploy",
        ),
        (
            1000.0,
            {
                "s1": SilenceAdded(
                    at=0, id="s1", starts=900, ends=1100, reason="deploy", by="me", domain="b.org"
                )
            },
            [],
            None,
        ),
        (
            1200.0,
            {"s1": SilenceAdded(at=0, id="s1", starts=900, ends=1100, reason="deploy", by="me")},
            [],
            None,
        ),
        (
            1000.0,
            {},
            parse_windows([{"start": "1970-01-01T00:15", "duration": "10m"}]),
            "maintenance window",
        ),
    ],
)
def test_why_silent(at, silences, site_windows, want):
    s = NotifySettings(
        maintenance=WINDOWS, websites={"a.org": WebsiteRouting(maintenance=site_windows)}
    )
    assert why_silent(s, silences, "a.org", "t1", at) == want


@pytest.mark.parametrize(
    "raw",
    [
        "not a list",
        [{"start": "02:00"}],
        [{"days": ["someday"], "start": "02:00", "duration": "1h"}],
        [{"start": "tomorrow", "duration": "1h"}],
        [{"start": "2025-01-01T00:00", "duration": "1h", "tz": "Mars/Olympus"}],
        [{"start": "2025-01-01T00:00", "duration": "1h", "every": "week"}],
    ],
)
def test_bad_windows_are_refused(raw):
    with pytest.raises(ValueError):
        parse_windows(raw)


def test_yaml_sexagesimal_time_of_day():
    """YAML 1.1 reads an unquoted 02:30 as 150; it still means half past two."""
    (w,) = parse_windows([{"days": ["sun"], "start": 150, "duration": "1h"}])
    assert str(w.time) == "02:30:00"
