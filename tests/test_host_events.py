"""Host observations are bounded: what a hostile or broken agent sends beyond them is refused."""

from __future__ import annotations

import msgspec
import pytest

from events import codec, subjects
from events.types import HostObserved
from tests.test_events import SAMPLES

HOST = next(e for e in SAMPLES if isinstance(e, HostObserved))


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
            {"filesystems": [msgspec.to_builtins(HOST.filesystems[0])] * 257},
            "filesystems",
            id="too-many-filesystems",
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
