"""``ssl-certificate-expiration: on-check``: report when the certificate expires.

The agent only reports the expiry date (``value``, Unix seconds); the
scheduler grades it by ``ssl.thresholds`` (services/scheduler/judge.py), so
changing the thresholds needs no agent change. A certificate the agent cannot
verify fails the TLS handshake, which the judge turns into a warning.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checks.base import Response, Verdict, error, kind_of, success

NAME = "ssl-certificate-expiration"
SCHEMES = {"https", "tls", "smtp", "imap", "pop3", "wss"}


def parse(expected: Any) -> str:
    """Always ``on-check``: the check takes no value (thresholds are ssl.thresholds), and
    Argos ignores what is written, though its schema wants text, a whole number, a list or a
    mapping there. ``false`` is refused: Argos checks the certificate all the same."""
    if expected is False:
        raise ValueError(
            "false does not turn the check off (remove it); expected on-check "
            "(thresholds are set in ssl.thresholds)"
        )
    if not isinstance(expected, str | int | list | dict):
        raise ValueError(
            f"expected on-check (thresholds are set in ssl.thresholds), got {kind_of(expected)}"
        )
    return "on-check"


def evaluate(response: Response, expected: str) -> Verdict:
    if response.cert_not_after is None:
        return error("no certificate was seen on this connection")
    when = datetime.fromtimestamp(response.cert_not_after, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return success(f"certificate valid until {when}", value=response.cert_not_after)
