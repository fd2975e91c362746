"""A run's completion as the agent publishes it: checked first as every reader will decode
it, since what a target answered makes it (``checks/completion.py`` bounds its texts; a
completion the contract refuses all the same would be a dead letter, and its tasks judged by
nobody: its checks are errors then).

Checking it took a decode of the whole event again, a tenth of the agent's CPU with the
decode of its request (py-spy). What the reader's decode checks beyond the bounds of the
fields holds of a completion the agent made of its request: its group, the tasks of its
outcomes (one per check of the request, in order) and its subject come from a request
decoded and admitted by the same contract, its agent and location are the agent's own
(checked as subject tokens when it starts). So only its bounds and its free-form values are
looked at, and the whole of it when either finds anything. The bounds are read off the
completion itself (``bounded``), without decoding what was just encoded (2 % of the agent's
CPU): the sizes and ranges of ``events/fields.py``, taken from its types.
"""

from __future__ import annotations

from typing import Any, get_args

from checks.probe import cannot_run
from events import codec, contract, lenient, subjects
from events.fields import (
    EARLIEST,
    LATEST,
    MAX_COUNT,
    MAX_ITEMS,
    MAX_TEXT,
    Facts,
    FarTimestamp,
    Headers,
    HttpStatus,
    Millis,
    Name,
    Status,
    Value,
)
from events.types import CheckCompleted, CheckOutcome, CheckRequested, Observation
from runtime.logs import Log

log = Log("tocsin.agent")


def _bounds(tp: Any) -> tuple[Any, Any]:
    """The range (``ge``, ``le``) of ``tp``, or (None, its longest length)."""
    meta = get_args(tp)[1]
    return (meta.ge, meta.le) if meta.max_length is None else (None, meta.max_length)


_NAME, _HEADERS, _FACTS = (_bounds(tp)[1] for tp in (Name, Headers, Facts))
_STATUS, _MILLIS, _FAR, _VALUE = map(_bounds, (HttpStatus, Millis, FarTimestamp, Value))
_TIMESTAMP = (EARLIEST, LATEST)
_STATUSES = frozenset(get_args(Status))


def _within(x: Any, bounds: tuple[float, float]) -> bool:
    """Whether ``x`` is a number (of a float field) within ``bounds``; NaN is not."""
    return type(x) in (float, int) and bounds[0] <= x <= bounds[1]


def bounded(c: CheckCompleted, data: bytes) -> bool:
    """What ``lenient.bounded(data)`` says of ``data``, the encoding of ``c``, told from ``c``
    without a decode. False in doubt (an int where a text is, a NaN, a subclass): the decode
    then answers."""
    o = c.observation
    if not (
        len(data) <= codec.MAX_EVENT_BYTES
        and b"\\u0000" not in data
        and type(c) is CheckCompleted
        and type(o) is Observation
        and c.v == c.VERSION
        and _within(c.at, _TIMESTAMP)
        and _within(c.started, _TIMESTAMP)
        and type(c.request) is type(c.group) is type(c.agent) is type(c.location) is str
        and len(c.request) <= _NAME
        and (o.status is None or (type(o.status) is int and _STATUS[0] <= o.status <= _STATUS[1]))
        and (o.body_bytes is None or (type(o.body_bytes) is int and 0 <= o.body_bytes <= MAX_COUNT))
        and (o.error is None or (type(o.error) is str and len(o.error) <= MAX_TEXT))
        and (o.error_kind is None or (type(o.error_kind) is str and len(o.error_kind) <= _NAME))
        and (o.elapsed_ms is None or _within(o.elapsed_ms, _MILLIS))
        and (o.cert_not_after is None or _within(o.cert_not_after, _FAR))
        and type(o.headers) is dict
        and len(o.headers) <= _HEADERS
        and type(o.facts) is dict
        and len(o.facts) <= _FACTS
        and type(c.outcomes) is list
        and len(c.outcomes) <= MAX_ITEMS
    ):
        return False
    for key, text in o.headers.items():
        if not (type(key) is type(text) is str and len(key) <= _NAME and len(text) <= MAX_TEXT):
            return False
    if not all(type(key) is str and len(key) <= _NAME for key in o.facts):
        return False
    for x in c.outcomes:
        if not (
            type(x) is CheckOutcome
            and type(x.task) is type(x.kind) is type(x.status) is type(x.detail) is str
            and len(x.kind) <= _NAME
            and x.status in _STATUSES
            and len(x.detail) <= MAX_TEXT
            and (x.value is None or _within(x.value, _VALUE))
        ):
            return False
    return True


def checked(completion: CheckCompleted, subject: str) -> bytes:
    """What ``lenient.encode_admitted(completion, subject)`` returns or raises, for a
    completion the agent made of an admitted request (``Prober.run``, ``cannot_run``)."""
    data = codec.encode(completion)
    # Facts are the only free-form values a completion holds: none, nothing to look at.
    if not bounded(completion, data) or (
        completion.observation.facts and contract.content_problem(completion)
    ):
        lenient.decode(data, subject)  # DecodeError saying why, or nothing wrong after all
    return data


def publishable(
    req: CheckRequested, completion: CheckCompleted, agent: str, location: str
) -> tuple[str, bytes]:
    """The subject and payload of the completion of ``req``; when the contract refuses it,
    of one saying each check could not run, and why."""
    subject = subjects.completed(agent, location, req.group)
    try:
        return subject, checked(completion, subject)
    except codec.DecodeError as exc:
        log.warning("completion refused by the event contract", error=str(exc)[:500])
        return subject, codec.encode(cannot_run(req, agent, location, completion.started, exc))
