"""``tcp-connect: true``: the target's connection is made.

That is a TCP connection for ``tcp://``, a verified TLS handshake for
``tls://``, a STARTTLS upgrade and handshake for ``smtp://``, ``imap://`` and
``pop3://``, a WebSocket handshake for ``ws://`` and ``wss://`` (beyond Argos).
A refused or timed-out connection fails the whole group before any check is
evaluated, so reaching ``evaluate`` means the connection was made.
"""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, success

NAME = "tcp-connect"
SCHEMES = {"tcp", "tls", "smtp", "imap", "pop3", "ws", "wss"}


def parse(expected: Any) -> bool:
    if expected is not True and expected is not None:
        raise ValueError(f"expected true, got {expected!r}")
    return True


def evaluate(response: Response, expected: bool) -> Verdict:
    elapsed = round(response.elapsed_ms, 1)
    return success(f"connected in {elapsed:g} ms", value=elapsed)
