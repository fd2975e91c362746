"""Host figures against thresholds: the pure decisions, as a table."""

from __future__ import annotations

import msgspec
import pytest

from checks.hostjudge import HostTaskState, figures, grade, judge, stale, task_id
from configuration.hosts import FsSelect, HostRules, Threshold
from events.types import FilesystemFigures, HostObserved

T0 = 1_800_000_000.0
DISK = Threshold(warning=80, critical=90)
MEMORY = Threshold(warning=90, critical=95, for_=300)
LOAD = Threshold(warning=1.0)


@pytest.mark.parametrize(
    ("value", "threshold", "state", "now", "severity", "warning_since", "critical_since"),
    [
        pytest.param(50, DISK, HostTaskState(), T0, "ok", None, None, id="disk-below-warning"),
        pytest.param(
            80, DISK, HostTaskState(), T0, "ok", None, None, id="disk-at-warning-is-not-above"
        ),
        pytest.param(80.1, DISK, HostTaskState(), T0, "warning", T0, None, id="disk-above-warning"),
        pytest.param(90.5, DISK, HostTaskState(), T0, "critical", T0, T0, id="disk-above-critical"),
        pytest.param(
            70,
            DISK,
            HostTaskState("critical", 3, T0 - 60, T0 - 60),
            T0,
            "ok",
            None,
            None,
            id="disk-back-below-forgets-the-breach",
        ),
        pytest.param(
            96, MEMORY, HostTaskState(), T0, "ok", T0, T0, id="memory-above-critical-not-yet-for-5m"
        ),
        pytest.param(
            96,
            MEMORY,
            HostTaskState(None, 0, T0 - 299, T0 - 299),
            T0,
            "ok",
            T0 - 299,
            T0 - 299,
            id="memory-above-critical-299s",
        ),
        pytest.param(
            96,
            MEMORY,
            HostTaskState(None, 0, T0 - 300, T0 - 300),
            T0,
            "critical",
            T0 - 300,
            T0 - 300,
            id="memory-above-critical-for-5m",
        ),
        pytest.param(
            96,
            MEMORY,
            HostTaskState(None, 0, T0 - 400, T0 - 100),
            T0,
            "warning",
            T0 - 400,
            T0 - 100,
            id="memory-warning-long-enough-critical-not-yet",
        ),
        pytest.param(
            92,
            MEMORY,
            HostTaskState("critical", 2, T0 - 900, T0 - 600),
            T0,
            "warning",
            T0 - 900,
            None,
            id="memory-down-from-critical-to-warning",
        ),
        pytest.param(1.0, LOAD, HostTaskState(), T0, "ok", None, None, id="load-equal-to-cores"),
        pytest.param(1.01, LOAD, HostTaskState(), T0, "warning", T0, None, id="load-above-cores"),
        pytest.param(
            99, Threshold(), HostTaskState(), T0, "ok", None, None, id="no-levels-never-judged"
        ),
        pytest.param(
            95,
            Threshold(critical=90),
            HostTaskState(),
            T0,
            "critical",
            None,
            T0,
            id="critical-only",
        ),
    ],
)
def test_grade(value, threshold, state, now, severity, warning_since, critical_since):
    got, after = grade(value, threshold, state, now)
    assert (got, after.warning_since, after.critical_since) == (
        severity,
        warning_since,
        critical_since,
    )


def _obs(at: float = T0, fs: list[FilesystemFigures] | None = None, **figs: float) -> HostObserved:
    base = dict(
        at=at,
        agent="web1",
        location="default",
        hostname="web1",
        interval=10.0,
        cores=2,
        cpu_percent=5.0,
        load1=0.1,
        load5=0.1,
        load15=0.1,
        memory_total_bytes=100,
        memory_available_bytes=50,
        memory_percent=50.0,
        swap_total_bytes=0,
        swap_free_bytes=0,
        swap_percent=0.0,
        boot_time=1.0,
    )
    return HostObserved(**{**base, **figs}, filesystems=fs or [])  # type: ignore[arg-type]


def _fs(
    mount: str, used: float, fstype: str = "ext4", inodes: float | None = 1.0
) -> FilesystemFigures:
    return FilesystemFigures(mount, fstype, "/dev/x", 100, 100, 100, used, 10, 9, inodes)


@pytest.mark.parametrize(
    ("obs", "select", "judged"),
    [
        pytest.param(_obs(), FsSelect(), {"cpu", "memory", "load"}, id="no-swap-no-filesystem"),
        pytest.param(
            _obs(swap_total_bytes=10, swap_free_bytes=5, swap_percent=50.0),
            FsSelect(),
            {"cpu", "memory", "load", "swap"},
            id="swap-judged-when-there-is-some",
        ),
        pytest.param(
            _obs(fs=[_fs("/", 10), _fs("/run", 1, "tmpfs", None)]),
            FsSelect(),
            {"cpu", "memory", "load", "disk /", "inodes /", "disk /run"},
            id="inodes-only-where-there-is-an-inode-table",
        ),
        pytest.param(
            _obs(fs=[_fs("/", 10), _fs("/run", 1, "tmpfs")]),
            FsSelect(exclude_types=("tmpfs",)),
            {"cpu", "memory", "load", "disk /", "inodes /"},
            id="exclude-by-type",
        ),
        pytest.param(
            _obs(fs=[_fs("/", 10), _fs("/srv/a", 1), _fs("/srv/b", 1)]),
            FsSelect(include=("/srv/*",), exclude=("/srv/b",)),
            {"cpu", "memory", "load", "disk /srv/a", "inodes /srv/a"},
            id="include-glob-exclusion-wins",
        ),
    ],
)
def test_which_figures_are_judged(obs: HostObserved, select: FsSelect, judged: set[str]):
    got = figures(obs, HostRules(filesystems=select))
    assert {_label(f.task.url) for f in got} == judged


def _label(url: str) -> str:
    """``host://web1/disk/srv/a`` → ``disk /srv/a``; ``host://web1/cpu`` → ``cpu``."""
    metric, sep, mount = url.removeprefix("host://web1/").partition("/")
    return f"{metric} /{mount}".rstrip() if sep else metric


def test_judgement_counts_consecutive_failures_and_resets_on_ok():
    rules = HostRules()
    disk = task_id("web1", "disk", "/")
    states: dict[str, HostTaskState] = {}
    seen = []
    for i, used in enumerate([95, 95, 50, 95]):
        verdict, defs, after = judge(_obs(T0 + 10 * i, [_fs("/", used)]), rules, states)
        states.update(after)
        j = next(j for j in verdict.judgements if j.task == disk)
        seen.append((j.severity, j.previous, j.failures))
        assert defs[disk].group == "h-web1" and verdict.group == "h-web1"
    assert seen == [
        ("critical", None, 1),
        ("critical", "critical", 2),
        ("ok", "critical", 0),
        ("critical", "ok", 1),
    ]
    assert "disk / 95.0 % used (warning above 80 %, critical above 90 %)" in next(
        j.reason for j in verdict.judgements if j.task == disk
    )


def test_silent_host_becomes_unknown_once_within_two_intervals():
    rules = HostRules()
    _, defs, states = judge(_obs(T0), rules, {})
    tasks = sorted(defs)
    # Watched since long before: the silence counts from the last figures.
    assert stale("web1", tasks, states, T0, 10.0, T0 + 15.0, T0 - 600) is None  # not yet
    got = stale("web1", tasks, states, T0, 10.0, T0 + 15.5, T0 - 600)
    assert got is not None
    unknown, after = got
    assert {j.severity for j in unknown.judgements} == {"unknown"} and len(
        unknown.judgements
    ) == len(tasks)
    assert (
        "no figures from host web1 for 16s (it reports every 10s)" in unknown.judgements[0].reason
    )
    states.update(after)
    assert stale("web1", tasks, states, T0, 10.0, T0 + 19.0, T0 - 600) is None  # said once


@pytest.mark.parametrize(
    ("last_seen", "watched_from", "now", "told"),
    [
        # Figures every 10 s, the last at T0; the scheduler restarted at T0 + 25 (`tocsin dev`
        # stopped and started again): its own downtime is not the host's silence.
        pytest.param(T0, T0 + 25, T0 + 26, None, id="just-restarted-not-silent-yet"),
        pytest.param(T0, T0 + 25, T0 + 40, None, id="restarted-1.5-intervals-ago-not-yet"),
        pytest.param(T0, T0 + 25, T0 + 40.5, "for 40s", id="silent-1.5-intervals-after-restart"),
        pytest.param(T0 + 30, T0 + 25, T0 + 45, None, id="figures-since-restart-count"),
        pytest.param(
            T0 + 30, T0 + 25, T0 + 45.5, "for 16s", id="silent-after-figures-since-restart"
        ),
        pytest.param(T0, T0 - 5, T0 + 15.5, "for 16s", id="watched-all-along"),
    ],
)
def test_silence_counts_from_when_the_scheduler_started_watching(
    last_seen, watched_from, now, told
):
    _, defs, states = judge(_obs(T0), HostRules(), {})
    got = stale("web1", sorted(defs), states, last_seen, 10.0, now, watched_from)
    if told is None:
        assert got is None
        return
    assert got is not None
    verdict, _ = got
    # The reason says how long the host has really been silent.
    assert f"no figures from host web1 {told} (it reports every 10s)" in (
        verdict.judgements[0].reason
    )


def test_task_definitions_are_stable_and_tokens():
    a = task_id("web1", "disk", "/var")
    assert a == task_id("web1", "disk", "/var") != task_id("web1", "disk", "/srv")
    assert a.isalnum() and len(a) <= 64
    verdict, defs, _ = judge(_obs(fs=[_fs("/var", 1)]), HostRules(retry_before_notification=2), {})
    d = defs[a]
    assert (d.domain, d.url, d.check, d.retry_before_notification) == (
        "host:web1",
        "host://web1/disk/var",
        "host-disk",
        2,
    )
    assert d.expected == {"warning": 80.0, "critical": 90.0}
    assert msgspec.json.decode(msgspec.json.encode(verdict))["group"] == "h-web1"
