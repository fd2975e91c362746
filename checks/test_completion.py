"""Whatever a target sends, the completion is one the event contract admits, and the target's
failure is told: servers on loopback sending an over-long line, a NUL byte, an endless reply.

``probe`` decodes each completion as the scheduler will (tests/probing.py): one the contract
refused was an "the agent could not run the check" unknown, or no completion at all."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from checks import status_is, tcp_connect
from checks.completion import MAX_REASON, bounded, completed
from checks.masking import RequestSecrets
from events import codec, subjects
from events.types import CheckCompleted, CheckOutcome, CheckRequested, CheckSpec, Observation
from services.argos import translate
from tests.mailservers import Handler, StreamServer
from tests.probing import probe

LONG_LINE = b"220 " + b"x" * 200_000 + b"\r\n"
#: Each server writes its bytes on connection, then waits for the client to hang up.
SENDS = {
    "long-line": LONG_LINE,
    "nul-in-greeting": b"554 no\x00thanks\r\n",
    "endless-reply": b"250-more\r\n" * 1000,
}


def _handler(data: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(data)
            await writer.drain()
            await reader.read()
        except OSError:
            pass  # the prober hung up first
        writer.close()

    return handle


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, int]]:
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(StreamServer(_handler(data))).port
            for name, data in SENDS.items()
        }


CASES = [
    pytest.param(
        "smtp", "long-line", "starttls: a reply line longer than 64 KiB", id="smtp-200kb-line"
    ),
    pytest.param(
        "imap", "long-line", "starttls: a reply line longer than 64 KiB", id="imap-200kb-line"
    ),
    pytest.param(
        "pop3", "long-line", "starttls: a reply line longer than 64 KiB", id="pop3-200kb-line"
    ),
    pytest.param("http", "long-line", "http: 400", id="http-200kb-status-line"),
    pytest.param("ws", "long-line", "http: 400", id="ws-200kb-status-line"),
    pytest.param(
        "smtp", "endless-reply", "starttls: an endless SMTP reply", id="smtp-endless-reply"
    ),
    pytest.param(
        "smtp",
        "nul-in-greeting",
        "starttls: greeting 554 no\ufffdthanks",
        id="smtp-nul-in-greeting",
    ),
    pytest.param("http", "nul-in-greeting", "http: 400", id="http-nul-in-status-line"),
]


@pytest.mark.parametrize(("scheme", "server", "says"), CASES)
async def test_a_hostile_answer_fails_the_check_with_a_short_reason(
    servers: dict[str, int], scheme: str, server: str, says: str
) -> None:
    kind, expected = (status_is.NAME, 200) if scheme == "http" else (tcp_connect.NAME, True)
    done = await probe(f"{scheme}://127.0.0.1:{servers[server]}/", kind, expected)
    (outcome,) = done.outcomes
    assert outcome.status == "failure", outcome.detail
    assert outcome.detail.startswith(says), outcome.detail
    assert len(outcome.detail) <= MAX_REASON
    assert len(done.observation.error or "") <= MAX_REASON


def _request() -> CheckRequested:
    return CheckRequested(
        at=1_800_000_000.0,
        request="r1",
        group="g1",
        location="l",
        url="https://example.org/",
        method="GET",
        ip_version=4,
        timeout=10.0,
        due=1_800_000_000.0,
        checks=[CheckSpec("t1", status_is.NAME, 200)],
    )


HUGE = "a\x00b" + "y" * 1_000_000


def _admitted(done: CheckCompleted) -> CheckCompleted:
    subject = subjects.completed(done.agent, done.location, done.group)
    back = codec.decode(codec.encode_admitted(done, subject), subject)
    assert isinstance(back, CheckCompleted)
    return back


def test_every_text_of_a_completion_is_bounded() -> None:
    observation = Observation(error=HUGE, error_kind="http", headers={"server": HUGE})
    outcomes = [CheckOutcome("t1", status_is.NAME, "failure", HUGE)]
    done = _admitted(completed(_request(), "a", "l", 1_800_000_000.0, observation, outcomes))
    texts = [done.observation.error, done.observation.headers["server"], done.outcomes[0].detail]
    assert texts == [bounded(HUGE)] * 3
    assert bounded(HUGE) == "a\ufffdb" + "y" * (MAX_REASON - 4) + "…"


def test_an_argos_agents_long_error_is_bounded() -> None:
    failed = {"error_type": "ConnectError", "error_message": HUGE, "error_details": "…"}
    done = translate.completion(
        _request(), {"t1": ("failure", failed)}, "argos-a", "l", 1_800_000_000.0, 1_800_000_001.0
    )
    assert _admitted(done).outcomes[0].detail == bounded(f"ConnectError: {HUGE}")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("short", "short", id="short-kept"),
        pytest.param("x" * MAX_REASON, "x" * MAX_REASON, id="at-the-limit-kept"),
        pytest.param("x" * (MAX_REASON + 1), "x" * (MAX_REASON - 1) + "…", id="past-it-cut"),
        pytest.param("a\x00", "a\ufffd", id="nul-replaced"),
    ],
)
def test_bounded(text: str, shown: str) -> None:
    assert bounded(text) == shown


def test_a_secret_cut_by_the_bound_is_masked_first() -> None:
    """Bounded then masked, a secret straddling the cut would leave its first part in clear."""
    secret = "STRADDLINGSECRET42"
    error = "x" * (MAX_REASON - 8) + secret + " and more"
    observation = Observation(error=error, error_kind="http")
    done = completed(
        _request(),
        "a",
        "l",
        1_800_000_000.0,
        observation,
        [],
        secrets=RequestSecrets([secret]),
    )
    assert done.observation.error is not None
    assert "STRADDL" not in done.observation.error
    assert len(done.observation.error) <= MAX_REASON
