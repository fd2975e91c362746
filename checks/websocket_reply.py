"""``websocket-reply: {send: ping, like: '^pong'}``: a message sent is answered (beyond Argos).

For ``ws://`` and ``wss://`` targets: after the handshake the agent sends the
text and reads the next message; ``like`` is searched in it (``re.search``).
The handshake alone is ``tcp-connect: true``.
"""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, check_regex, check_text, failure, shorten, success
from checks.base import regex as compiled

NAME = "websocket-reply"
SCHEMES = {"ws", "wss"}


def parse(expected: Any) -> dict[str, str]:
    if not isinstance(expected, dict) or set(expected) != {"send", "like"}:
        raise ValueError(
            f"expected {{send: TEXT, like: PATTERN}} such as {{send: ping, like: pong}}, "
            f"got {expected!r}"
        )
    return {"send": check_text(expected["send"]), "like": check_regex(expected["like"])}


def evaluate(response: Response, expected: dict[str, str]) -> Verdict:
    replies = response.facts.get("replies", {})
    if expected["send"] not in replies:
        return failure(
            f"{expected['send']!r} was not sent (the connection closed or the timeout ran out "
            "before its turn)"
        )
    reply = replies[expected["send"]]
    if reply is None:
        return failure(f"no reply to {expected['send']!r} (the connection closed or stayed silent)")
    if not compiled(expected["like"]).search(reply):
        return failure(f"reply {shorten(reply, 120)!r} does not match {expected['like']!r}")
    return success(f"reply {shorten(reply, 120)!r}")
