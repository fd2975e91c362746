"""Observers of targets beyond HTTP, by URL scheme: each makes one observation of a group.

An observer is ``async observe(req, url, ctx) -> (Observation, Response | None)``;
``None`` means no usable answer and fails every check of the group, as an
HTTP request that got no answer does. Adding one: docs/monitors.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from checks.observe import connect, dns, icmp, rdap, ws
from checks.observe.common import Answer, ProbeContext
from events.types import CheckRequested

Observer = Callable[[CheckRequested, str, ProbeContext], Awaitable[Answer]]

OBSERVERS: dict[str, Observer] = {
    "tcp": connect.observe,
    "tls": connect.observe,
    "smtp": connect.observe,
    "imap": connect.observe,
    "pop3": connect.observe,
    "dns": dns.observe,
    "ws": ws.observe,
    "wss": ws.observe,
    "icmp": icmp.observe,
    "rdap": rdap.observe,
}
