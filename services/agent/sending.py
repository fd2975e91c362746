"""A run's completion as the agent publishes it: checked first as every reader will decode
it, since what a target answered makes it (``checks/completion.py`` bounds its texts; a
completion the contract refuses all the same would be a dead letter, and its tasks judged by
nobody: its checks are errors then).

Checking it took a decode of the whole event again, a tenth of the agent's CPU with the
decode of its request (py-spy). What the reader's decode checks beyond the bounds of the
fields holds of a completion the agent made of its request: its group, the tasks of its
outcomes (one per check of the request, in order) and its subject come from a request
decoded and admitted by the same contract, its agent and location are the agent's own
(checked as subject tokens when it starts). So only its bounds (``lenient.bounded``) and
its free-form values are looked at, and the whole of it when either finds anything.
"""

from __future__ import annotations

from checks.probe import cannot_run
from events import codec, contract, lenient, subjects
from events.types import CheckCompleted, CheckRequested
from runtime.logs import Log

log = Log("tocsin.agent")


def checked(completion: CheckCompleted, subject: str) -> bytes:
    """What ``lenient.encode_admitted(completion, subject)`` returns or raises, for a
    completion the agent made of an admitted request (``Prober.run``, ``cannot_run``)."""
    data = codec.encode(completion)
    # Its facts are the only free-form values a completion holds: none (an HTTP check's),
    # nothing to look at.
    if not lenient.bounded(data) or (
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
