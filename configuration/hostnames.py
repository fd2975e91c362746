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


#: One label of a DNS name to query (after IDNA): a host name's characters and the
#: underscore of service records (``_dmarc``, ``_sip._tcp``).
_DNS_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
#: A name's text without its final dot: 255 octets on the wire.
MAX_DNS_NAME = 253


def dns_name_problem(name: str) -> str | None:
    """Why a DNS query cannot carry ``name``, or None. What a query may ask for is wider
    than a host name: ``_dmarc.example.org``, the wildcard ``*.example.org``, a final dot."""
    if name == ".":
        return None
    labels = name.removesuffix(".").split(".")
    if "" in labels:
        return f"the DNS name {name!r} has an empty label (two dots in a row, or a dot first)"
    ascii_labels = []
    for label in labels:
        try:
            ascii_labels.append(label if label.isascii() else label.encode("idna").decode())
        except UnicodeError:
            return f"the DNS name's label {label!r} is not a valid internationalized label"
    for i, label in enumerate(ascii_labels):
        if len(label) > 63:
            return f"the DNS name's label {label!r} is longer than 63 characters ({len(label)})"
        if not (_DNS_LABEL.fullmatch(label) or (i == 0 and label == "*")):
            return (
                f"the DNS name may hold only letters, digits, hyphens, underscores and dots, "
                f"got {name!r}"
            )
    size = len(".".join(ascii_labels))
    if size > MAX_DNS_NAME:
        return f"the DNS name is longer than {MAX_DNS_NAME} characters ({size})"
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
