"""Messages on core NATS subjects, outside the log: an operator's "check now", the live
log lines of a run and who watches them. They are not events (nothing replays them); their
subjects are outside ``tocsin.>`` so the ``EVENTS`` stream never captures them.

Decoding raises :class:`DecodeError` and nothing else, whatever the bytes. Like the log's
events, a message missing a field added since (an older writer) decodes, the field at its
default. Unlike them, the answer to "check now" also admits fields this version does not
know (a newer scheduler's, during a rolling upgrade): it is shown once and gone, so refusing
it would lose the operator's press for nothing, where an event refused waits in the log for
a reader that knows it. A request (``CheckNow``) stays strict: a scheduler does not act on
half of what it was asked.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import msgspec

from events import subjects


class CheckNow(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Ask the scheduler in charge to run a task's request group (or every group of a domain)
    right away, on every location; ``by`` is who asked, recorded in the request event."""

    by: str
    task: str | None = None
    domain: str | None = None


class Asked(msgspec.Struct):
    request: str
    group: str
    location: str
    #: False when the same request was already asked within the rate limit: not queued twice.
    queued: bool


class CheckNowAnswer(msgspec.Struct, omit_defaults=True):
    requests: list[Asked] = []
    #: Why nothing was asked (unknown task or domain, bad message).
    error: str | None = None
    #: The error is an unknown task or domain (not a failure of the scheduler).
    unknown: bool = False
    #: The task or domain is in force but has nothing to run (a heartbeat monitor: its pings
    #: judge it).
    refused: bool = False


Step = Literal["start", "dns", "connect", "tls", "sent", "response", "check", "error", "done"]


class LogLine(msgspec.Struct, forbid_unknown_fields=True):
    """One short line of an agent's run of a request, published as it happens."""

    request: str
    agent: str
    n: int
    #: Milliseconds since the agent began the run.
    ms: float
    step: Step
    text: str


class Watching(msgspec.Struct, forbid_unknown_fields=True):
    """Request groups whose runs' lines a watcher follows, each for so many seconds more
    (a duration, not an instant: the agents' clocks need not agree with the watcher's)."""

    groups: dict[str, float]


#: At most this many lines per run and characters per line: a run's log is a summary, and a
#: listener that is slow or absent costs the agent nothing.
MAX_LINES = 64
MAX_LINE = 300
#: At most this many bytes per line as published: a line at every bound (a request id of three
#: 64-character parts, an agent's name of 64, MAX_LINE characters of four bytes) fits twice.
MAX_LINE_BYTES = 4096

_check_now = msgspec.json.Decoder(CheckNow)
_answer = msgspec.json.Decoder(CheckNowAnswer)
_line = msgspec.json.Decoder(LogLine)
_watching = msgspec.json.Decoder(Watching)
M = TypeVar("M")


class DecodeError(ValueError):
    """The bytes are not the message expected; ``str()`` says what is wrong."""


def _decoded(decoder: msgspec.json.Decoder[M], data: bytes) -> M:
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        # msgspec raises UnicodeDecodeError (not its own error) on a string that is not UTF-8.
        raise DecodeError(str(exc)) from None


def encode(message: CheckNow | CheckNowAnswer | LogLine | Watching) -> bytes:
    return msgspec.json.encode(message)


def decode_check_now(data: bytes) -> CheckNow:
    return _decoded(_check_now, data)


def decode_answer(data: bytes) -> CheckNowAnswer:
    return _decoded(_answer, data)


def decode_line(data: bytes) -> LogLine:
    return _decoded(_line, data)


class LineRefused(ValueError):
    """A run-log message the web does not keep (the reason is the message)."""


def admitted_line(subject: str, data: bytes) -> LogLine:
    """A run-log message received on ``subject`` as a line to keep, or :class:`LineRefused`
    saying why not: within the bounds of a line, and of the run and the agent its subject
    names. An agent may publish only under its own name and location
    (``subjects.live_of_agent``): the subject is what the server checked, the body is not."""
    if len(data) > MAX_LINE_BYTES:
        raise LineRefused(f"{len(data)} bytes, more than {MAX_LINE_BYTES}")
    tokens = subject.split(".")
    if len(tokens) != 5 or tokens[0] != subjects.LIVE_PREFIX:
        raise LineRefused(
            f"subject {subject!r} is not {subjects.LIVE_PREFIX}.<group>.<location>.<run>.<agent>"
        )
    try:
        line = _line.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise LineRefused(f"not a log line: {exc}") from None
    if line.request != ".".join(tokens[1:4]):
        raise LineRefused(f"request {line.request!r} does not match subject {subject!r}")
    if line.agent != tokens[4]:
        raise LineRefused(f"agent {line.agent!r} does not match subject {subject!r}")
    if not 1 <= line.n <= MAX_LINES:
        raise LineRefused(f"line number {line.n} outside 1-{MAX_LINES}")
    if len(line.text) > MAX_LINE:
        raise LineRefused(f"text of {len(line.text)} characters, more than {MAX_LINE}")
    return line


def decode_watching(data: bytes) -> Watching:
    return _decoded(_watching, data)
