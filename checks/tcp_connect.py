"""``tcp-connect: true``: a TCP connection (a TLS handshake for ``tls://``) succeeds.

For ``tcp://host:port`` and ``tls://host:port`` targets (beyond Argos). A
refused or timed-out connection fails the whole group before any check is
evaluated, so reaching ``evaluate`` means the connection was made.
"""

from __future__ import annotations

from typing import Any

from checks.base import Response, Verdict, success

NAME = "tcp-connect"
SCHEMES = {"tcp", "tls"}


def parse(expected: Any) -> bool:
    if expected is not True and expected is not None:
        raise ValueError(f"expected true, got {expected!r}")
    return True


def evaluate(response: Response, expected: bool) -> Verdict:
    elapsed = round(response.elapsed_ms, 1)
    return success(f"connected in {elapsed:g} ms", value=elapsed)
