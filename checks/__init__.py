"""The check catalogue: one module per kind, registered here by its configuration name.

Adding a kind: see docs/adding-a-check.md.
"""

from __future__ import annotations

from types import ModuleType

from checks import (
    body_contains,
    body_like,
    dns_answer_contains,
    dns_answer_like,
    dns_rcode_is,
    domain_expiration,
    headers_contain,
    headers_have,
    headers_like,
    heartbeat,
    http_to_https,
    json_contains,
    json_has,
    json_is,
    json_like,
    packet_loss,
    response_time,
    ssl_certificate_expiration,
    status_in,
    status_is,
    tcp_connect,
    websocket_reply,
)

CATALOGUE: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        status_is,
        status_in,
        body_contains,
        body_like,
        headers_contain,
        headers_have,
        headers_like,
        json_contains,
        json_has,
        json_like,
        json_is,
        http_to_https,
        ssl_certificate_expiration,
        response_time,
        tcp_connect,
        dns_answer_contains,
        dns_answer_like,
        dns_rcode_is,
        websocket_reply,
        packet_loss,
        domain_expiration,
        heartbeat,
    )
}


def pushed(kind: str) -> bool:
    """A kind no agent runs (a heartbeat monitor): the pings it receives are judged instead,
    so there is nothing to dispatch, nor to run now."""
    return bool(getattr(CATALOGUE.get(kind), "PUSH", False))
