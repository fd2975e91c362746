"""The scheduler's verdicts on heartbeat pings and on their absence (pure functions), and the
ping endpoint's rate limit."""

from __future__ import annotations

import pytest

from checks.judge import TaskState
from events.types import MonitorPinged, TaskDef
from services import cli
from services.scheduler.heartbeats import Push, on_ping, on_time
from services.web.ping import RateLimit

EXPECTED = {"uuid": "6f1c1bd2-5a43-4cb6-9d55-0a3f1f7e2b10", "period": 60.0, "grace": 30.0}
TASK = TaskDef(
    id="t",
    group="g",
    domain="nightly",
    url="heartbeat://nightly",
    method="HEARTBEAT",
    ip_version=4,
    check="heartbeat",
    expected=EXPECTED,
    frequency=300,
)


def _ping(at: float, kind: str = "success", code: int | None = None) -> MonitorPinged:
    return MonitorPinged(at=at, group="g", task="t", kind=kind, exit_code=code)  # type: ignore[arg-type]


PINGS = [
    pytest.param(None, None, _ping(100), "ok", "ping received", 190, id="first-ping-ok"),
    pytest.param(
        "critical", None, _ping(100), "ok", "ping received", 190, id="late-then-ping-recovers"
    ),
    pytest.param(
        "ok", 40.0, _ping(100), "ok", "ping received, ran 60.0s", 190, id="duration-after-start"
    ),
    pytest.param(
        "ok",
        None,
        _ping(100, "fail"),
        "critical",
        "the job reported failure",
        190,
        id="fail-critical-at-once",
    ),
    pytest.param(
        "ok",
        90.0,
        _ping(100, "fail", 3),
        "critical",
        "the job reported exit code 3, ran 10.0s",
        190,
        id="exit-code",
    ),
    pytest.param(
        "ok",
        None,
        _ping(100, "start"),
        "ok",
        "the job started",
        130,
        id="start-gives-grace-to-finish",
    ),
    pytest.param(
        "critical",
        None,
        _ping(100, "start"),
        "critical",
        "the job started",
        130,
        id="start-does-not-recover",
    ),
]


@pytest.mark.parametrize(("prev", "started", "ping", "severity", "reason", "deadline"), PINGS)
def test_on_ping(prev, started, ping, severity, reason, deadline):
    push = Push(TASK, deadline=0, completion=7, started=started)
    verdict = on_ping(push, TaskState(prev, 2 if prev == "critical" else 0), ping, 8)
    (j,) = verdict.judgements
    assert (j.severity, j.reason, j.previous) == (severity, reason, prev)
    assert verdict.next_run == push.deadline == deadline
    assert verdict.completion == push.completion == 8
    assert j.failures == (0 if severity == "ok" else (3 if prev == "critical" else 1))


LATE = [
    pytest.param(None, None, 99, None, id="before-the-deadline-nothing"),
    pytest.param(None, None, 100, "late: no ping yet (grace 30s)", id="never-pinged"),
    pytest.param(
        10.0, None, 150, "late: no ping since 1970-01-01 00:00:10 UTC (grace 30s)", id="late"
    ),
    pytest.param(
        10.0,
        70.0,
        100,
        "started at 1970-01-01 00:01:10 UTC and did not finish within 30s",
        id="run-did-not-finish",
    ),
]


@pytest.mark.parametrize(("last", "started", "now", "reason"), LATE)
def test_on_time(last, started, now, reason):
    push = Push(TASK, deadline=100, completion=5, started=started, last_ping=last)
    verdict = on_time(push, TaskState("ok", 0), now)
    if reason is None:
        assert verdict is None
        return
    assert verdict is not None
    (j,) = verdict.judgements
    assert (j.severity, j.reason, j.previous, j.failures) == ("critical", reason, "ok", 1)
    # The next deadline is the next due time plus grace; the last judged ping stays the same.
    assert verdict.next_run == push.deadline == now + 90
    assert verdict.completion == 5
    assert push.started is None


def test_rate_limit_per_monitor():
    limit = RateLimit(rate=3, window=60)
    assert [limit.allow("a", t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limit.allow("b", 3)  # another monitor has its own budget
    assert limit.allow("a", 60.5)  # the first hit left the window


def test_heartbeat_new_prints_an_entry_config_check_accepts(tmp_path, capsys):

    code = cli.main(["heartbeat", "new", "nightly", "--cron", "0 3 * * *", "--tz", "Europe/Paris"])
    out = capsys.readouterr().out
    assert code == 0
    entry = "".join(line + "\n" for line in out.splitlines() if not line.startswith("#"))
    path = tmp_path / "c.yaml"
    path.write_text("general:\n  frequency: 1m\nwebsites:\n" + entry)
    assert cli.main(["config", "check", str(path)]) == 0
    checked = capsys.readouterr().out
    assert "heartbeat nightly: ping /ping/" in checked
    assert "curl -fsS -m 10 --retry 5" in out


def test_heartbeat_new_refuses_a_bad_schedule(capsys):

    assert cli.main(["heartbeat", "new", "x", "--cron", "61 * * * *"]) == 2
    assert "invalid cron expression" in capsys.readouterr().out


#: Whatever a user calls the job, the entry printed is one `config check` accepts: the name
#: keeps its letters and digits (any script), the rest becomes hyphens.
NAMES = [
    pytest.param("nightly-backup", "nightly-backup", id="plain"),
    pytest.param("db.main_v2", "db.main_v2", id="dot-and-underscore"),
    pytest.param("my job", "my-job", id="space"),
    pytest.param("  padded\t", "padded", id="surrounding-blanks"),
    pytest.param("sauvegarde été", "sauvegarde-été", id="accents"),
    pytest.param("日次バックアップ", "日次バックアップ", id="japanese"),
    pytest.param("db/main", "db-main", id="slash"),
    pytest.param("it's", "it-s", id="single-quote"),
    pytest.param('say "hi"', "say-hi", id="double-quotes"),
    pytest.param("#1 job: nightly", "1-job-nightly", id="yaml-comment-and-colon"),
    pytest.param("a@b:80?x#y", "a-b-80-x-y", id="url-delimiters"),
    pytest.param("C:\\backups", "C-backups", id="backslash"),
    pytest.param("ℌourly ½", "Hourly-1-2", id="compatibility-characters"),
    pytest.param("a" * 300, "a" * 300, id="long"),
]


@pytest.mark.parametrize(("name", "written"), NAMES)
def test_heartbeat_new_entry_passes_config_check_for_any_name(tmp_path, capsys, name, written):
    assert cli.main(["heartbeat", "new", name]) == 0
    out = capsys.readouterr().out
    entry = "".join(line + "\n" for line in out.splitlines() if not line.startswith("#"))
    path = tmp_path / "c.yaml"
    path.write_text("general:\n  frequency: 1m\nwebsites:\n" + entry, encoding="utf-8")
    assert cli.main(["config", "check", str(path)]) == 0, capsys.readouterr()
    assert f"heartbeat {written}: ping /ping/" in capsys.readouterr().out
    # A name that had to change is said, not changed behind the user's back.
    assert (f"# {name!r} is written heartbeat://{written}" in out) == (name != written), out


REFUSED_OPTIONS = [
    pytest.param(["///"], "the name must hold a letter or a digit", id="no-letter"),
    pytest.param(["x", "--tz", "Europe/Paris"], "--tz goes with --cron", id="tz-without-cron"),
    pytest.param(
        ["x", "--period", "2h", "--cron", "0 3 * * *"],
        "give either --period or --cron, not both",
        id="period-and-cron",
    ),
]


@pytest.mark.parametrize(("args", "message"), REFUSED_OPTIONS)
def test_heartbeat_new_refuses_what_it_would_drop(capsys, args, message):
    assert cli.main(["heartbeat", "new", *args]) == 2
    assert message in capsys.readouterr().out
