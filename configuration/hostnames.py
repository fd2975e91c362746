"""Host names of website targets: what the agent can connect to, and over which IP versions."""

from __future__ import annotations

import ipaddress
import re

from configuration.reader import Reader
from configuration.yamlsource import Located

#: One DNS label (after IDNA): what the agent's resolver and HTTP client accept.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def host_problem(host: str) -> str | None:
    """Why ``host`` is not a name or an address the agent can connect to, or None."""
    if literal_ip_version(host) is not None:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return "the host name is not a valid internationalized domain name"
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return _label_problem(labels)
    return None


def _label_problem(labels: list[str]) -> str:
    """What is wrong with the first label ``_LABEL`` refuses, in words."""
    for label in labels:
        if not label:
            return "the host name has an empty label (two dots in a row)"
        if len(label) > 63:
            return "the host name has a label longer than 63 characters"
        if re.fullmatch(r"[A-Za-z0-9-]+", label) and (label[0] == "-" or label[-1] == "-"):
            return f"the host name's label {label!r} starts or ends with a hyphen"
    if all(_LABEL.fullmatch(label) for label in labels):
        return "the host name is longer than 253 characters"
    return "the host name may hold only letters, digits, hyphens and dots"


def literal_ip_version(host: str) -> int | None:
    """4 or 6 when ``host`` is an IP address rather than a name."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def ip_versions(
    r: Reader, node: Located, path: str, host: str, ipv4: bool, ipv6: bool
) -> tuple[bool, bool] | None:
    """(ipv4, ipv6) for ``host``. An IP address is checked over its own version only: an
    IPv4 address has no IPv6 route (the agent would fail every IPv6 request). Said as a
    warning when both were asked; an error (None) when the address's version is off."""
    version = literal_ip_version(host)
    if version is None:
        return ipv4, ipv6
    wanted = {4: ipv4, 6: ipv6}
    if not wanted[version]:
        r.fail(node.where, path, f"an IPv{version} address, but ipv{version} is off")
        return None
    if wanted[10 - version]:
        r.warn(node.where, path, f"an IPv{version} address: checked over IPv{version} only")
    return version == 4, version == 6
