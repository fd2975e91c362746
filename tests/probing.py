"""One check on any target through the agent's own code (parse, the wire, Prober.run) and
its grade by the scheduler's judge: what the tables of targets beyond HTTP run."""

from __future__ import annotations

import ssl
import time
from typing import Any

from checks import CATALOGUE
from checks.judge import DEFAULT_THRESHOLDS, GroupState, judge
from checks.probe import Prober
from configuration import targets
from events import codec, subjects
from events.types import CheckCompleted, CheckRequested, CheckSpec, TaskDef


async def probe(
    url: str,
    kind: str,
    expected: Any,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 5.0,
    ip_version: int = 4,
) -> CheckCompleted:
    return await probe_all(url, [(kind, expected)], ssl_context, timeout, ip_version)


async def probe_all(
    url: str,
    checks: list[tuple[str, Any]],
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 5.0,
    ip_version: int = 4,
) -> CheckCompleted:
    """The checks ``(kind, expected)`` as one request: tasks ``t``, ``t1``, ``t2``…"""
    url = targets.target(url) or url
    scheme = url.split(":")[0]
    req = CheckRequested(
        at=time.time(),
        request="r",
        group="g",
        location="test",
        url=url,
        method="GET" if scheme in ("http", "https") else scheme.upper(),
        ip_version=ip_version,
        timeout=timeout,
        due=time.time(),
        checks=[
            CheckSpec(f"t{i or ''}", kind, CATALOGUE[kind].parse(expected))
            for i, (kind, expected) in enumerate(checks)
        ],
    )
    wire = codec.decode(codec.encode(req), subjects.requested("test", "g"))
    assert isinstance(wire, CheckRequested)
    async with Prober(10, ssl_context) as prober:
        done = await prober.run(wire, "test", "test")
    # As on the wire back: what the agent saw must survive encoding.
    back = codec.decode(codec.encode(done), subjects.completed("test", "test", "g"))
    assert isinstance(back, CheckCompleted)
    return back


def grade(
    done: CheckCompleted,
    expected: Any = None,
    thresholds: list[tuple[float, str]] = DEFAULT_THRESHOLDS,
) -> tuple[str, str]:
    """The scheduler's severity and reason for the one task of ``done``."""
    (spec,) = done.outcomes
    task = TaskDef(
        id="t",
        group="g",
        domain="d",
        url="u",
        method="GET",
        ip_version=4,
        check=spec.kind,
        expected=CATALOGUE[spec.kind].parse(expected) if expected is not None else None,
        frequency=60,
    )
    verdict = judge([task], {}, GroupState(), done, 1, thresholds)
    return verdict.judgements[0].severity, verdict.judgements[0].reason
