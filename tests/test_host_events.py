"""Host observations are bounded: what a hostile or broken agent sends beyond them is refused,
and what the scheduler makes of one it admits (definitions, verdict) is admitted too."""

from __future__ import annotations

import time

import msgspec
import nats
import pytest

from checks.hostjudge import judge
from configuration import diff as configdiff
from configuration.config import Config
from configuration.hosts import DEFAULT_THRESHOLDS, HostRules, HostsConfig, Threshold
from events import codec, streams, subjects
from events.hosts import MAX_DEVICE, MAX_FSTYPE, MAX_MOUNT
from events.types import MAX_FILESYSTEMS, ConfigApplied, FilesystemFigures, HostObserved
from runtime import bus
from services.scheduler.hosts import HostJudging
from tests.test_events import SAMPLES

HOST = next(e for e in SAMPLES if isinstance(e, HostObserved))


def _fs(**changes: object) -> dict[str, object]:
    return {**msgspec.to_builtins(HOST.filesystems[0]), **changes}


def _with(**changes: object) -> bytes:
    raw = msgspec.to_builtins(HOST)
    raw.update(changes)
    return msgspec.json.encode(raw)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"cpu_percent": 100.5}, "cpu_percent", id="cpu-over-100"),
        pytest.param({"memory_percent": -1}, "memory_percent", id="memory-negative"),
        pytest.param({"load1": float("inf")}, "load1", id="load-infinite"),
        pytest.param({"interval": 0}, "interval", id="interval-zero"),
        pytest.param({"agent": "a" * 63}, "agent", id="agent-too-long-for-its-group"),
        pytest.param({"agent": "a.b"}, "agent", id="agent-not-a-token"),
        pytest.param({"hostname": "x\x00y"}, "hostname", id="hostname-nul"),
        pytest.param(
            {"filesystems": [_fs(mount=f"/m{i}") for i in range(MAX_FILESYSTEMS + 1)]},
            "filesystems",
            id="too-many-filesystems",
        ),
        # 256 mounts of ~780 characters were admitted: the scheduler's definitions of their
        # tasks were then refused, and its verdict (474 kB) dead-lettered by every reader.
        pytest.param(
            {"filesystems": [_fs(mount="/" + "m" * MAX_MOUNT)]}, "mount", id="mount-too-long"
        ),
        pytest.param({"filesystems": [_fs(fstype="t" * 65)]}, "fstype", id="fstype-too-long"),
        pytest.param({"filesystems": [_fs(device="d" * 1025)]}, "device", id="device-too-long"),
        pytest.param(
            {"filesystems": [_fs(used_percent=23), _fs(used_percent=99)]},
            "filesystems: mount '/' is listed twice",
            id="mount-listed-twice",
        ),
        pytest.param(
            {"filesystems": [{**msgspec.to_builtins(HOST.filesystems[0]), "used_percent": 101}]},
            "used_percent",
            id="filesystem-over-100",
        ),
    ],
)
def test_out_of_bounds_host_observation_is_refused(changes: dict[str, object], field: str):
    with pytest.raises(codec.DecodeError) as err:
        codec.decode(_with(**changes), subjects.host_observed("a1", "default"))
    assert "host.observed" in str(err.value) and field in str(err.value)


def test_host_figures_only_on_their_agents_subject():
    codec.decode(codec.encode(HOST), subjects.host_observed("a1", "default"))
    with pytest.raises(codec.DecodeError, match="agent 'a1' does not match subject"):
        codec.decode(codec.encode(HOST), subjects.host_observed("b1", "default"))
    with pytest.raises(codec.DecodeError, match="does not match subject"):
        codec.decode(codec.encode(HOST), subjects.heartbeat("a1", "default"))


def test_host_subject_is_under_the_agent_name():
    assert subjects.host_observed("web1", "eu") == "tocsin.host.observed.web1.eu"
    assert subjects.host_observed("web1", "eu").startswith(subjects.HOST_OBSERVED_ALL[:-1])


def largest_observation(agent: str = "a" * 62, mount: int = MAX_MOUNT) -> HostObserved:
    """The largest host observation the contract admits: every bound reached."""
    fs = [
        FilesystemFigures(
            f"/{i:03d}".ljust(mount, "m"),
            "t" * MAX_FSTYPE,
            "d" * MAX_DEVICE,
            2**62,
            2**62,
            2**62,
            99.99,
            2**62,
            2**62,
            99.99,
        )
        for i in range(MAX_FILESYSTEMS)
    ]
    return msgspec.structs.replace(
        HOST,
        agent=agent,
        location="l" * 62,
        hostname="h" * 4096,
        interval=86400.0,
        swap_total_bytes=2**62,
        filesystems=fs,
    )


#: Every metric judged, with the longest reason: every figure of an observation is a task.
EVERY_FIGURE = HostRules(
    thresholds={
        k: Threshold(warning=12.3456789, critical=12.3456789, for_=86399.0)
        for k in DEFAULT_THRESHOLDS
    },
    retry_before_notification=1_000_000,
)


def test_the_largest_observation_makes_definitions_and_a_verdict_the_contract_admits():
    """What the scheduler publishes of an observation it admitted, it publishes whole: the
    bounds of an observation keep its host tasks' definitions and verdict within an event."""
    obs = largest_observation()
    data = codec.encode_admitted(obs, subjects.host_observed(obs.agent, obs.location))
    assert len(data) <= codec.MAX_EVENT_BYTES
    verdict, defs, _ = judge(obs, EVERY_FIGURE, {})
    assert len(defs) == 4 + 2 * MAX_FILESYSTEMS  # cpu, memory, load, swap; disk, inodes each
    codec.encode_admitted(verdict, subjects.judged(verdict.group))
    added, _, _ = configdiff.diff({}, defs)
    definitions = ConfigApplied(
        at=obs.at,
        revision="r" * 64,
        source=f"hosts:{obs.agent}",
        applied_by="scheduler",
        added=added,
    )
    codec.encode_admitted(definitions, subjects.host_tasks(obs.agent))


def _strangers_observation() -> HostObserved:
    """The issue's: 256 filesystems whose mount points have about 780 characters."""
    fs = [
        FilesystemFigures(f"/{i:03d}".ljust(780, "m"), "ext4", "/dev/vda", 100, 20, 15, 99.0)
        for i in range(256)
    ]
    return msgspec.structs.replace(HOST, agent="local", filesystems=fs)


@pytest.mark.parametrize(
    ("observation", "judged"),
    [
        pytest.param(_strangers_observation(), False, id="256-long-mounts-refused-whole"),
        pytest.param(largest_observation(), True, id="largest-admitted-judged-whole"),
    ],
)
async def test_what_the_scheduler_publishes_of_an_observation_every_reader_admits(
    nats_server, observation: HostObserved, judged: bool
):
    """The scheduler refused the host's task definitions (511 kB) yet published its verdict
    (474 kB), which every reader dead-lettered. An observation is now refused whole, or
    judged whole: definitions and verdict both admitted."""
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        hosts = HostsConfig(defaults=EVERY_FIGURE)
        cfg = Config(source="t", digest="", tasks={}, general={}, ssl_thresholds=[], hosts=hosts)
        judging = HostJudging(lambda: cfg)
        subject = subjects.host_observed(observation.agent, observation.location)
        data = msgspec.json.encode(observation)  # as a broken or hostile agent sends it
        ack = await js.publish(subject, data)
        await judging._observed(js, data, subject, ack.seq, time.time())
        published = [m async for m in bus.replay(js, "tocsin.>") if m.subject != subject]
        for m in published:
            codec.decode(m.data, m.subject)  # admitted by every reader
        assert {m.subject.split(".")[1] for m in published} == (
            {"host", "task"} if judged else set()
        )
    finally:
        await nc.close()
