"""``http-to-https: true | 301 | {start, stop} | [301, 302]``: the ``http://`` URL redirects.

The ``http://`` URL must answer with a status in [300, 400) (``true``), that
code, that range (stop excluded) or one of the list. As Argos 0.10.3, only the status
is judged, wherever ``Location`` points (an apex redirecting to ``https://www.…`` is
fine), and the detail says where it went: Argos agents answer a location's checks
beside Tocsin agents (``tocsin argos``), and a verdict must not depend on which one ran.

The answer judged is the one to the ``http://`` URL (``target_url``): for an
``https://`` target the prober makes that second request itself, whatever the
``https://`` one gives (as Argos's agent, which asks the ``http://`` twin on its own).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from checks.base import Response, Verdict, failure, status_code, success

NAME = "http-to-https"
SCHEMES = {"http", "https"}


def parse(expected: Any) -> dict[str, int] | list[int]:
    if expected is True:
        return {"start": 300, "stop": 400}
    if isinstance(expected, int) and not isinstance(expected, bool):
        return [_redirect(expected)]
    if isinstance(expected, list) and expected:
        return sorted({_redirect(code) for code in expected})
    if isinstance(expected, dict):
        unknown = set(expected) - {"start", "stop"}
        if unknown or set(expected) != {"start", "stop"}:
            raise ValueError(
                "expected a range {start: 301, stop: 309} with exactly the keys "
                f"start and stop, got keys {sorted(expected)}"
            )
        start, stop = status_code(expected["start"]), _stop(expected["stop"])
        if start >= stop:
            raise ValueError(f"start ({start}) must be below stop ({stop}); stop is excluded")
        return {"start": start, "stop": stop}
    raise ValueError(
        "expected true, a status code (301), a range {start: 301, stop: 309} or a "
        f"list [301, 302], got {expected!r}"
    )


def _redirect(code: Any) -> int:
    code = status_code(code)
    if not 300 <= code < 400:
        raise ValueError(f"{code} is not a redirection status (300-399)")
    return code


def _stop(code: Any) -> int:
    if isinstance(code, bool) or not isinstance(code, int) or not 101 <= code <= 600:
        raise ValueError(f"expected stop as a status code (101-600, excluded), got {code!r}")
    return code


def target_url(url: str) -> str:
    """The ``http://`` twin of a URL: the same port, except that 443 (https's own) becomes 80."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.port == 443:
        netloc = netloc.rsplit(":", 1)[0]
    return urlunsplit(("http", netloc, *parts[2:]))


def _accepted(status: int, expected: dict[str, int] | list[int]) -> bool:
    if isinstance(expected, dict):
        return expected["start"] <= status < expected["stop"]
    return status in expected


def _describe(expected: dict[str, int] | list[int]) -> str:
    if isinstance(expected, dict):
        return f"a status in [{expected['start']}, {expected['stop']})"
    return f"one of {expected}" if len(expected) > 1 else f"status {expected[0]}"


def evaluate(response: Response, expected: dict[str, int] | list[int]) -> Verdict:
    if not _accepted(response.status, expected):
        return failure(f"{response.url} answered {response.status}, expected {_describe(expected)}")
    location = response.headers.get("location")
    if not location:
        return success(f"{response.url} answered {response.status}, without a Location header")
    target = urljoin(response.url, location)
    note = "" if urlsplit(target).scheme == "https" else " (not an https:// URL)"
    return success(f"{response.url} answered {response.status} to {target}{note}")
