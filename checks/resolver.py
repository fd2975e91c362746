"""A DNS resolver's address as a check names it. Apart from the DNS observer so that reading a
configuration (the scheduler, ``tocsin config check``) does not load the observers and their
network libraries."""

from __future__ import annotations

import ipaddress


def _digits(text: str) -> bool:
    # ASCII only: str.isdigit() is true of other scripts' digits ('٥٣'), which int() reads.
    return text.isascii() and text.isdigit()


def resolver(value: str) -> tuple[str, int]:
    """``192.0.2.53``, ``192.0.2.53:5353``, ``[2001:db8::53]:53`` → (address, port)."""
    host, port = value, 53
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not _digits(rest[1:]):
                raise ValueError(f"expected a resolver such as [2001:db8::53]:53, got {value!r}")
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _, number = value.partition(":")
        if not _digits(number):
            raise ValueError(f"expected a resolver such as 192.0.2.53:53, got {value!r}")
        port = int(number)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"the resolver must be an IP address, got {value!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"the resolver's port must be 1-65535, got {port}")
    return host, port
