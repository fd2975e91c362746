"""The completion of a run, as every agent builds it: Tocsin's prober (and its "could not run
the check"), and the Argos gateway from an Argos agent's results.

What a target answers ends up in a completion: an error quoting a 200 kB status line, a
greeting holding a NUL byte, a verdict quoting a page. Each such text is bounded here, in one
place, well within the event contract's bounds (Text: 64 KiB, no NUL): whatever a target
sends, the contract admits the completion. A refused one would make every check of its
group unknown, "the agent could not run the check", instead of the target's failure.
"""

from __future__ import annotations

import time

import msgspec

from checks.masking import NO_SECRETS, RequestSecrets
from checks.observe.common import clean
from events.types import CheckCompleted, CheckOutcome, CheckRequested, Observation

#: The longest error or verdict detail a completion holds, ellipsis included.
MAX_REASON = 500


def bounded(text: str, limit: int = MAX_REASON) -> str:
    """``text`` without NUL (PostgreSQL refuses it), cut with an ellipsis to ``limit``."""
    text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def completed(
    req: CheckRequested,
    agent: str,
    location: str,
    started: float,
    observation: Observation,
    outcomes: list[CheckOutcome],
    at: float | None = None,
    secrets: RequestSecrets = NO_SECRETS,
) -> CheckCompleted:
    """The completion of ``req``, its texts masked (``secrets``, checks/masking.py) then
    bounded: a cut through a secret would leave its first part; ``at`` defaults to now."""
    observation, outcomes = secrets.masked(observation, outcomes)
    observation = msgspec.structs.replace(
        observation,
        error=None if observation.error is None else bounded(observation.error),
        headers={k: bounded(v) for k, v in observation.headers.items()},
        facts=clean(observation.facts),
    )
    return CheckCompleted(
        at=time.time() if at is None else at,
        request=req.request,
        group=req.group,
        agent=agent,
        location=location,
        started=started,
        observation=observation,
        outcomes=[msgspec.structs.replace(o, detail=bounded(o.detail)) for o in outcomes],
    )
