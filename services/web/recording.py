"""What the web publishes is first checked by the log's own contract: an event its consumers
would refuse (a NUL, text past a field's bound, a name too long, a lone surrogate) is the
caller's 422 here, never a 2xx followed by a dead letter. The API's models say the same
bounds for the schema; this check is what keeps them from drifting apart."""

from __future__ import annotations

from fastapi import HTTPException

from events import codec, contract
from events.types import Event


def admitted(event: Event) -> bytes:
    """``event`` encoded, as its subject's consumers will decode it; a 422 saying which field
    is wrong otherwise."""
    try:
        return codec.encode_admitted(event, contract.subject_of(event))
    except UnicodeEncodeError:
        raise HTTPException(422, "text holds a lone surrogate (not a character): refused") from None
    except codec.DecodeError as exc:
        raise HTTPException(422, f"the event log refuses this: {exc}") from None
