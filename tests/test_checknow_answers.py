"""The scheduler's answer to "check now" during a rolling upgrade: written by an older or a
newer scheduler, it is read for what this version knows of it (an older one lacks the
fields added since, which have defaults; a newer one has fields this version lacks, which
are left out), and an answer that is no answer at all is a clear error, never a traceback.
The other version's scheduler is a responder on a real NATS server, answering those bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client

from checks import request
from events import control, subjects
from runtime import bus
from runtime.embedded import NatsServer
from tests.helpers import flushed

ASKED = {"request": "g1.default.now1", "group": "g1", "location": "default", "queued": True}
REFUSAL = "a heartbeat monitor is judged on its pings; nothing to run now"


def _json(value: Any) -> bytes:
    return msgspec.json.encode(value)


#: (the answer's bytes, what ``ask_now`` gives: the requests, or the error's text and flags)
ANSWERS = [
    pytest.param(
        _json({"error": "no task 't1' in the configuration in force", "unknown": True}),
        ("no task 't1' in the configuration in force", True, False),
        id="older-scheduler-unknown-task-without-refused",
    ),
    pytest.param(
        _json({"error": REFUSAL, "unknown": False, "refused": True, "retry_after": 30}),
        (REFUSAL, False, True),
        id="newer-scheduler-refusal-with-a-field-unknown-here",
    ),
    pytest.param(
        _json({"error": "asked 3s ago: at most once per 30s", "too_soon": True}),
        ("asked 3s ago: at most once per 30s", False, False),
        id="newer-scheduler-too-soon-with-a-flag-unknown-here",
    ),
    pytest.param(
        _json({"requests": [{**ASKED, "agent": "a1"}], "note": "from a newer scheduler"}),
        [control.Asked(**ASKED)],
        id="newer-scheduler-requests-with-fields-unknown-here",
    ),
    pytest.param(
        _json({"requests": [ASKED]}),
        [control.Asked(**ASKED)],
        id="scheduler-of-this-version-requests",
    ),
]

UNREADABLE = [
    pytest.param(b"not json", id="not-json"),
    pytest.param(_json({"requests": 5}), id="requests-not-a-list"),
    pytest.param(_json({"requests": [{"request": "r"}]}), id="asked-without-its-fields"),
    pytest.param(b'{"error": "\xff"}', id="not-utf8"),
]


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await bus.connect(nats_server.url, "test")
    yield client
    await bus.close(client)


async def _answered(nc: Client, answer: bytes) -> list[control.Asked]:
    async def respond(msg: Any) -> None:
        await msg.respond(answer)

    sub = await nc.subscribe(subjects.CHECK_NOW, cb=respond)
    await flushed(nc)
    try:
        return await request.ask_now(nc, control.CheckNow(by="test", task="t1"))
    finally:
        await sub.unsubscribe()


@pytest.mark.parametrize(("answer", "expected"), ANSWERS)
async def test_an_answer_of_another_version_is_read_for_what_this_one_knows(
    nc: Client, answer: bytes, expected: Any
):
    if isinstance(expected, list):
        assert await _answered(nc, answer) == expected
        return
    with pytest.raises(request.CheckNowError) as err:
        await _answered(nc, answer)
    assert (str(err.value), err.value.unknown, err.value.refused) == expected


@pytest.mark.parametrize("answer", UNREADABLE)
async def test_an_unreadable_answer_is_a_clear_error(nc: Client, answer: bytes):
    with pytest.raises(request.CheckNowError) as err:
        await _answered(nc, answer)
    assert str(err.value).startswith("the scheduler's answer is unreadable: ")
    assert not (err.value.unknown or err.value.refused)


#: Each decoder, and text of one of its fields that is not UTF-8.
DECODERS = [
    pytest.param(control.decode_check_now, b'{"by": "\xff"}', id="check-now"),
    pytest.param(control.decode_answer, b'{"error": "\xff"}', id="answer"),
    pytest.param(control.decode_line, b'{"request": "\xff"}', id="log-line"),
    pytest.param(control.decode_watching, b'{"groups": {"\xff": 1}}', id="watching"),
]
BAD = [
    pytest.param(None, id="not-utf8"),
    pytest.param(b"\xff", id="not-json"),
    pytest.param(b"[]", id="not-an-object"),
]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize(("decode", "not_utf8"), DECODERS)
def test_a_control_message_decodes_or_raises_decode_error_only(
    decode: Any, not_utf8: bytes, bad: bytes | None
):
    """Each reader catches DecodeError alone (the scheduler answering "check now", the web
    hearing log lines, an agent hearing watchers): text that is not UTF-8 raised
    UnicodeDecodeError past them."""
    with pytest.raises(control.DecodeError):
        decode(not_utf8 if bad is None else bad)
