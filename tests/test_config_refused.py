"""A configuration the scheduler cannot take (the event contract refuses it, or what it holds
cannot be run) is reported with its subject, sequence and reason and skipped, whether it is
the first one the scheduler meets or a later one: the scheduler keeps dispatching what it had
(or nothing) and takes the next good one. Against a real NATS, the scheduler in-process."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest
from nats.js import JetStreamContext

from configuration import config as configuration
from configuration.inforce import RefusedPart, apply_config, last_settings
from events import codec, streams, subjects
from events.types import CheckRequested, ConfigApplied, TaskDef
from runtime import bus
from tests.helpers import DemoTarget, Stack, site_config, wait_for

#: Not an event the contract admits: every consumer dead-letters it.
GARBAGE = b'{"type": "config.applied", "v": 1, "at": 1760000000, "nonsense": 1}'
HEARTBEAT = """general:
  frequency: 2s
websites:
  - domain: heartbeat://backup
    checks:
      - heartbeat: {uuid: 0b3c2a5e-0f5a-4a43-9a37-5a3c0e6f1d11, period: 1d}
"""


def _files(tmp_path: Path, url: str) -> dict[str, Path]:
    out = {
        "good": site_config(url, {"a": ["status-is: 200"]}),
        "next": site_config(url, {"b": ["status-is: 200"]}),
        # What the reader admits and the event contract does not (a NUL character in a
        # setting the log carries).
        "refused": site_config(url, {"a": ["status-is: 200"]}, root_path='"/x\\0y"'),
        "heartbeat": HEARTBEAT,
    }
    for name, body in out.items():
        (tmp_path / f"{name}.yaml").write_text(body)
    return {name: tmp_path / f"{name}.yaml" for name in out}


def _unrunnable(files: dict[str, Path]) -> bytes:
    """A ``config.applied`` the contract admits whose heartbeat monitor has no schedule
    (a hostile publisher's), beside the good file's website."""
    monitor = next(iter(configuration.parse(files["heartbeat"]).tasks.values()))
    monitor = msgspec.structs.replace(monitor, expected={"uuid": monitor.expected["uuid"]})
    tasks: list[TaskDef] = [*configuration.parse(files["good"]).tasks.values(), monitor]
    event = ConfigApplied(
        at=time.time(), revision="hostile", source="x.yaml", applied_by="x", added=tasks
    )
    return codec.encode_admitted(event, subjects.CONFIG_APPLIED)


@dataclass
class Case:
    #: The scheduler's file.
    file: str
    #: What the log holds before the scheduler starts.
    before: list[str] = field(default_factory=list)
    #: What lands once the scheduler dispatches the files' tasks it runs first.
    later: list[str] = field(default_factory=list)
    #: The files whose tasks the scheduler dispatches before ``later`` lands.
    first: list[str] = field(default_factory=lambda: ["good"])
    #: What is logged as refused.
    refused: str = subjects.CONFIG_APPLIED


CASES = {
    "its own file the contract refuses, on an empty log": Case(
        "refused", first=[], refused="text with a NUL character"
    ),
    "an undecodable config.applied first in the log": Case("good", before=["garbage"]),
    "an undecodable config.applied after a good one": Case("good", later=["garbage"]),
    "an unrunnable heartbeat monitor first in the log": Case(
        "next", before=["unrunnable"], first=["good"], refused="backup"
    ),
    "an unrunnable heartbeat monitor after a good one": Case(
        "good", later=["unrunnable"], refused="backup"
    ),
}


async def _publish(js: JetStreamContext, what: list[str], files: dict[str, Path]) -> int:
    """The sequence of the last published (0: none)."""
    seq = 0
    for name in what:
        data = GARBAGE if name == "garbage" else _unrunnable(files)
        seq = (await js.publish(subjects.CONFIG_APPLIED, data)).seq
    return seq


async def _requested(js: JetStreamContext, groups: set[str]) -> bool:
    seen = set()
    try:
        async for m in bus.replay(js, subjects.REQUESTED_ALL):
            ev = codec.decode(m.data, m.subject)
            if isinstance(ev, CheckRequested):
                seen.add(ev.group)
    except Exception:  # the scheduler has not made the stream yet
        return False
    return groups <= seen


def _groups(files: dict[str, Path], names: list[str]) -> set[str]:
    return {t.group for n in names for t in configuration.parse(files[n]).tasks.values()}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_a_refused_configuration_is_reported_and_skipped(
    nats_server: Any,
    demo_target: DemoTarget,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: Case,
) -> None:
    caplog.set_level(logging.INFO)
    files = _files(tmp_path, demo_target.url)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, ["default"])
    await _publish(js, case.before, files)
    stack = Stack(nats_server.url, None, files[case.file])
    scheduler = stack.scheduler()
    try:
        first = _groups(files, case.first)
        await wait_for(
            lambda: _requested(js, first) if first else _in_force(scheduler),
            30,
            what="the first configuration dispatched",
        )
        later = await _publish(js, case.later, files)
        await wait_for(
            lambda: _value(scheduler.applied_seq >= later), 30, what="the later one read"
        )
        await apply_config(js, configuration.parse(files["next"]), "test")
        await wait_for(
            lambda: _requested(js, _groups(files, ["next"])),
            30,
            what="the next good configuration dispatched",
        )
        assert not stack.services[0][1].done()
    finally:
        await stack.close()
        await nc.close()
    refusals = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        and "refused" in r.getMessage()
        and r.name.startswith("tocsin")
    ]
    assert refusals, caplog.text[-3000:]
    said = " ".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in refusals)
    assert case.refused in said
    if case.before or case.later:
        assert "seq" in said, said


async def _in_force(scheduler: Any) -> bool:
    return scheduler.config is not None


async def _value(v: bool) -> bool:
    return v


async def test_the_web_and_the_projector_are_told_the_last_one_is_refused(nats_server: Any):
    """They read only the last ``config.applied`` (its settings): a refused one is an error
    naming it, which they log, keeping the settings they have."""
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        seq = (await js.publish(subjects.CONFIG_APPLIED, GARBAGE)).seq
        with pytest.raises(RefusedPart, match=f"{subjects.CONFIG_APPLIED} seq {seq}: .*nonsense"):
            await last_settings(js)
    finally:
        await nc.close()
