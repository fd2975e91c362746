"""What a one-shot command says when it cannot reach NATS or PostgreSQL, or they refuse it:
one line naming the server and why, no traceback (``services.cli`` prints it), as the
``nats`` CLI says "no servers available"."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit


class Unreachable(Exception):
    """NATS or PostgreSQL could not be reached or refused us; the message says where and why."""


def reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (an OSError's text is "[Errno 111] Connect
    call failed ('127.0.0.1', 1)"; nats-py's errors start with "nats: ")."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).strip() or type(exc).__name__
    return text.removeprefix("nats: ")


def most_telling(failures: Sequence[BaseException]) -> BaseException:
    """Of an attempt's failures, the one that says most: what the server said (an
    authorization violation) over the reset of the connection it closes right after, which a
    read or write may meet first, or not, from one run to the next."""
    said = [f for f in failures if not isinstance(f, OSError)]
    return (said or failures)[-1]


def shown(url: str) -> str:
    """``url`` (or comma-separated URLs) without a password: an error message gets pasted into
    issues and chats."""
    return ",".join(_without_password(u) for u in url.split(","))


def _without_password(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # an unreadable port: the URL is shown as it was given
        return url
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}@{host}"))
