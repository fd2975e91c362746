"""A keyed list of an event holds each key once: an event listing a task (a mount, a
location …) twice is refused at decode time, saying its type and the key, by both decoders,
so that every consumer dead-letters it instead of each keeping another entry (the projector
the first outcome, the scheduler the last: "ok" on the page, "critical" in the alert)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from events import codec, contract, keyed, lenient
from events.types import (
    REGISTRY,
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    CheckSpec,
    ConfigApplied,
    HostObserved,
    Judgement,
    StatusIncidentPosted,
    TaskChange,
    TaskJudged,
)
from tests.helpers import answer_refused, fetch, site_config, write_config
from tests.test_events import SAMPLES, TASK


def _sample(cls: type) -> Any:
    return next(e for e in SAMPLES if type(e) is cls)


def _with(cls: type, **changes: Any) -> Any:
    return msgspec.structs.replace(_sample(cls), **changes)


_FS = _sample(HostObserved).filesystems[0]
_TWO_LOCATIONS = msgspec.structs.replace(TASK, locations=["eu", "eu"])

#: (the list, as a path through the types; the event holding a key twice; the key).
CASES = [
    pytest.param(
        "ConfigApplied.added", _with(ConfigApplied, added=[TASK, TASK]), "t1", id="config-added"
    ),
    pytest.param(
        "ConfigApplied.changed",
        _with(ConfigApplied, added=[], changed=[TaskChange(TASK, ["frequency"])] * 2),
        "t1",
        id="config-changed",
    ),
    pytest.param(
        "ConfigApplied.removed",
        _with(ConfigApplied, added=[], removed=["t1", "t1"]),
        "t1",
        id="config-removed",
    ),
    pytest.param(
        "ConfigApplied.removed",
        _with(ConfigApplied, added=[TASK], removed=["t1"]),
        "t1",
        id="config-added-and-removed",
    ),
    pytest.param(
        "ConfigApplied.added[].locations",
        _with(ConfigApplied, added=[_TWO_LOCATIONS]),
        "eu",
        id="config-added-task-locations",
    ),
    pytest.param(
        "ConfigApplied.changed[].task.locations",
        _with(ConfigApplied, added=[], changed=[TaskChange(_TWO_LOCATIONS, ["locations"])]),
        "eu",
        id="config-changed-task-locations",
    ),
    pytest.param(
        "ConfigApplied.changed[].fields",
        _with(ConfigApplied, added=[], changed=[TaskChange(TASK, ["timeout", "timeout"])]),
        "timeout",
        id="config-changed-fields",
    ),
    pytest.param(
        "CheckRequested.checks",
        _with(CheckRequested, checks=[CheckSpec("t1", "status-is", 200)] * 2),
        "t1",
        id="request-checks",
    ),
    pytest.param(
        "CheckCompleted.outcomes",
        _with(
            CheckCompleted,
            outcomes=[
                CheckOutcome("t1", "status-is", "success"),
                CheckOutcome("t1", "status-is", "failure"),
            ],
        ),
        "t1",
        id="completion-outcomes-success-then-failure",
    ),
    pytest.param(
        "TaskJudged.judgements",
        _with(
            TaskJudged,
            judgements=[
                Judgement("t1", "ok", None, "fine"),
                Judgement("t1", "critical", None, "down"),
            ],
        ),
        "t1",
        id="verdict-judgements-ok-then-critical",
    ),
    pytest.param(
        "HostObserved.filesystems",
        _with(
            HostObserved,
            filesystems=[
                msgspec.structs.replace(_FS, used_percent=23.0),
                msgspec.structs.replace(_FS, used_percent=99.0),
            ],
        ),
        "/",
        id="host-filesystems-same-mount",
    ),
    pytest.param(
        "StatusIncidentPosted.components",
        _with(StatusIncidentPosted, components=["API", "API"]),
        "API",
        id="incident-components",
    ),
]


@pytest.mark.parametrize(("where", "event", "key"), CASES)
def test_a_key_listed_twice_is_refused_by_both_decoders_alike(where: str, event: Any, key: str):
    data, subject = codec.encode(event), contract.subject_of(event)
    with pytest.raises(codec.DecodeError) as strict:
        codec.decode(data, subject)
    tag = type(event).__struct_config__.tag
    assert f"{subject}: {tag}: " in str(strict.value)
    assert f"{key!r} is listed twice" in str(strict.value)
    with pytest.raises(codec.DecodeError) as fast:
        lenient.decode(data, subject)
    assert str(fast.value) == str(strict.value)
    with pytest.raises(codec.DecodeError):
        codec.encode_admitted(event, subject)  # what a writer of ours checks before publishing


def test_each_key_once_is_admitted():
    for event in SAMPLES:
        assert keyed.repeated(event) is None
        codec.decode(codec.encode(event), contract.subject_of(event))


def _lists(info: Any, path: str, out: set[str], seen: set[type]) -> None:
    """The paths of every list an event type holds, through structs, unions and lists."""
    if isinstance(info, msgspec.inspect.Metadata):
        _lists(info.type, path, out, seen)
    elif isinstance(info, msgspec.inspect.StructType):
        if info.cls in seen:
            return
        for f in info.fields:
            _lists(f.type, f"{path}.{f.name}", out, seen | {info.cls})
    elif isinstance(info, msgspec.inspect.UnionType):
        for t in info.types:
            _lists(t, path, out, seen)
    elif isinstance(info, msgspec.inspect.ListType):
        out.add(path)
        _lists(info.item_type, f"{path}[]", out, seen)
    elif isinstance(info, msgspec.inspect.DictType):
        _lists(info.value_type, f"{path}{{}}", out, seen)


def test_every_list_of_every_event_type_is_keyed_and_tested():
    """A list added to an event type fails here until ``events/keyed.py`` keys it (and a
    case above shows a key of it listed twice refused)."""
    found: set[str] = set()
    for cls in REGISTRY.values():
        _lists(msgspec.inspect.type_info(cls), cls.__name__, found, set())
    tested = {p.values[0] for p in CASES}
    assert found == tested
    assert {c.__struct_config__.tag for c in keyed.TYPES} == set(keyed.LISTS)


async def test_a_completion_listing_a_task_twice_is_a_dead_letter_for_every_consumer(
    nats_server, database_url, demo_target, tmp_path: Path
):
    """The issue's completion: outcomes ``[success, failure]`` of one task stored the result
    as success while the scheduler judged it critical. Now neither takes it: the projector
    and the scheduler record it as a dead letter, and there is no result and no verdict."""
    config = write_config(
        tmp_path / "c.yaml", site_config(demo_target.url, {"healthy": ["status-is: 200"]}, "5s")
    )

    def success_then_failure(req: CheckRequested) -> list[CheckOutcome]:
        task = req.checks[0].task
        return [
            CheckOutcome(task, "status-is", "success", "status 200"),
            CheckOutcome(task, "status-is", "failure", "status 500"),
        ]

    reason, seq = await answer_refused(nats_server.url, database_url, config, success_then_failure)
    assert re.search(r"outcomes: task '\w+' is listed twice", reason)
    assert not await fetch(database_url, "SELECT * FROM results WHERE seq = $1", seq)
