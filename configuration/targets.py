"""Targets beyond Argos's websites: which URL schemes exist and how each is written.

A target that is not ``http(s)://`` carries its ``checks`` directly under the
website (there is no path nor method). Each scheme's URL is validated here and
normalised (default port made explicit, query keys sorted) so that the task's
identity does not depend on how it was spelt. docs/monitors.md shows each one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

from checks.resolver import resolver
from configuration import hostnames
from configuration.paths import Check
from configuration.reader import Reader, text
from configuration.yamlsource import Located

#: Record types a ``dns://`` target may ask for.
DNS_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA")
MAIL_PORTS = {"smtp": 25, "imap": 143, "pop3": 110}
MAX_PINGS = 20
#: Targets whose observation does not depend on the IP version of the prober: one task
#: each, not one per IP version (a DNS answer or a registry record is the same over both).
ONE_IP_VERSION = {"dns", "rdap", "heartbeat"}
HTTP_SCHEMES = ("http", "https")


def written_port(netloc: str) -> str:
    """The port as written after the host ("" if none). Not ``SplitResult.port``: it raises
    on text, and 0 or an empty port would read as no port, hence a default."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        hostport = hostport.partition("]")[2]
    return hostport.rpartition(":")[2] if ":" in hostport else ""


def port_number(written: str) -> int | None:
    """The port 1-65535 written in ASCII digits, or None."""
    if written.isascii() and written.isdigit() and 0 < int(written) < 65536:
        return int(written)
    return None


def _port(parts: SplitResult, url: str, default: int | None = None) -> int:
    written = written_port(parts.netloc)
    if written:
        port = port_number(written)
        if port is None:
            raise ValueError(f"a port must be a number 1-65535, got {written!r} in {url!r}")
        return port
    if default is None:
        raise ValueError(f"expected {parts.scheme}://host:port (a port, no path), got {url!r}")
    return default


def _query(parts: SplitResult, url: str, known: set[str]) -> dict[str, str]:
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = {k.lower(): v for k, v in pairs}
    for key in query:
        if key not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ValueError(f"unknown parameter {key!r} in {url!r} (known: {names})")
    return query


def _bare(parts: SplitResult, url: str, what: str) -> None:
    if parts.path not in ("", "/"):
        raise ValueError(f"expected {what} (no path), got {url!r}")


def _host(parts: SplitResult) -> str:
    host = parts.hostname or ""
    return f"[{host}]" if ":" in host else host


def _connect(parts: SplitResult, url: str) -> str:
    port = _port(parts, url)
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"expected {parts.scheme}://host:port (a port, no path), got {url!r}")
    return f"{parts.scheme}://{_host(parts)}:{port}"


def _mail(parts: SplitResult, url: str) -> str:
    port = _port(parts, url, MAIL_PORTS[parts.scheme])
    _bare(parts, url, f"{parts.scheme}://host[:port]")
    _query(parts, url, set())
    return f"{parts.scheme}://{_host(parts)}:{port}"


def _dns(parts: SplitResult, url: str) -> str:
    if written_port(parts.netloc):
        raise ValueError(
            f"expected dns://NAME?type=A[&resolver=IP:PORT] (the resolver's port goes in "
            f"resolver=), got {url!r}"
        )
    _bare(parts, url, "dns://NAME?type=A")
    if problem := hostnames.dns_name_problem(parts.hostname or ""):
        raise ValueError(problem)
    query = _query(parts, url, {"type", "resolver"})
    rtype = query.get("type", "A").upper()
    if rtype not in DNS_TYPES:
        raise ValueError(f"unknown record type {rtype!r} (known: {', '.join(DNS_TYPES)})")
    out = {"type": rtype}
    if "resolver" in query:
        address, port = resolver(query["resolver"])
        out["resolver"] = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return f"dns://{parts.hostname}?{urlencode(sorted(out.items()), safe=':[]')}"


def _icmp(parts: SplitResult, url: str) -> str:
    if written_port(parts.netloc):
        raise ValueError(f"expected icmp://host (ICMP has no port), got {url!r}")
    _bare(parts, url, "icmp://host")
    query = _query(parts, url, {"count"})
    count = query.get("count", "3")
    if not count.isdigit() or not 1 <= int(count) <= MAX_PINGS:
        raise ValueError(f"count must be 1-{MAX_PINGS} echo requests, got {count!r}")
    return f"icmp://{_host(parts)}?count={int(count)}"


def _ws(parts: SplitResult, url: str) -> str:
    # Kept as written (path and query are the server's), once its port is known good.
    _port(parts, url, 80 if parts.scheme == "ws" else 443)
    return url


def _rdap(parts: SplitResult, url: str) -> str:
    if written_port(parts.netloc) or not parts.hostname or "." not in parts.hostname:
        raise ValueError(f"expected rdap://DOMAIN such as rdap://example.org, got {url!r}")
    _bare(parts, url, "rdap://DOMAIN")
    query = _query(parts, url, {"server"})
    if "server" not in query:
        return f"rdap://{parts.hostname}"
    server = urlsplit(query["server"])
    if server.scheme not in ("http", "https") or not server.hostname:
        raise ValueError(
            f"server must be an RDAP base URL such as https://rdap.example/, got "
            f"{query['server']!r}"
        )
    if (port := written_port(server.netloc)) and port_number(port) is None:
        raise ValueError(f"the RDAP server's port must be a number 1-65535, got {port!r}")
    return f"rdap://{parts.hostname}?server={query['server']}"


def connected_host(url: str) -> str:
    """The host the agent connects to for a normalised target: the server an ``rdap://``
    target names (its domain is only asked about), else the URL's own. An IP address there
    decides the IP version the target is checked over (hostnames.ip_versions)."""
    parts = urlsplit(url)
    server = dict(parse_qsl(parts.query)).get("server") if parts.scheme == "rdap" else None
    return (urlsplit(server).hostname if server else parts.hostname) or ""


def _heartbeat(parts: SplitResult, url: str) -> str:
    name = parts.netloc
    # No port: the name is all of it, and a colon would read as one.
    if ":" in name or parts.path not in ("", "/") or parts.query or "@" in name:
        raise ValueError(
            f"expected heartbeat://NAME such as heartbeat://nightly-backup, got {url!r}"
        )
    return f"heartbeat://{name}"


PARSERS: dict[str, Callable[[SplitResult, str], str]] = {
    "tcp": _connect,
    "tls": _connect,
    "smtp": _mail,
    "imap": _mail,
    "pop3": _mail,
    "dns": _dns,
    "icmp": _icmp,
    "ws": _ws,
    "wss": _ws,
    "rdap": _rdap,
    "heartbeat": _heartbeat,
}
SCHEMES = tuple(PARSERS)


def _no_fragment(scheme: str, url: str) -> None:
    """A ``#fragment`` is refused on these targets: no probe sends it, and the normalised URL
    would drop it, so that ``tcp://db:5432#primary`` and ``#replica`` were one task."""
    if "#" not in url:
        return
    if scheme == "heartbeat":
        raise ValueError(
            f"a heartbeat's name cannot hold '#' (the URL would end its name there), got {url!r}"
        )
    if scheme in ("ws", "wss"):
        why = "a WebSocket URL has none, RFC 6455; write a '#' of its path as %23"
    else:
        why = "nothing of it would be sent"
    raise ValueError(f"a {scheme}:// target takes no #fragment ({why}), got {url!r}")


def target(url: str) -> str | None:
    """The normalised URL of a target beyond HTTP; ``None`` if the scheme is not one of these."""
    parts = urlsplit(url)
    parser = PARSERS.get(parts.scheme)
    if parser is None:
        return None
    if not parts.hostname:
        raise ValueError(f"expected a host name in {url!r}")
    _no_fragment(parts.scheme, url)
    return parser(parts, url)


def domain(url: str) -> str:
    """What the website is called in alerts and pages: the host (and port, if it has one)."""
    parts = urlsplit(url)
    return parts.netloc


def one_monitor_per_ping_url(
    r: Reader, node: Located, path: str, checks: list[Check], seen: dict[str, str]
) -> None:
    """A heartbeat's UUID names its ping URL: two monitors sharing one would each take the
    other's pings. ``seen`` maps the UUIDs met so far to their website's path."""
    for check in checks:
        if check.kind == "heartbeat":
            key = check.expected["uuid"]
            if key in seen:
                r.fail(node.where, path, f"uuid {key} is already the ping URL of {seen[key]}")
            seen.setdefault(key, path)


def website(v: Any) -> str:
    """A website's ``domain``: an http(s):// URL, or one of the targets above."""
    url = text(v)
    parts = urlsplit(url)
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ValueError("a URL must not hold spaces or control characters")
    # A network host, not a DNS name to query (``_dmarc.…``) nor a heartbeat's name.
    networked = parts.scheme not in ("dns", "heartbeat")
    if networked and parts.hostname and (problem := hostnames.host_problem(parts.hostname)):
        raise ValueError(problem)
    if parts.scheme in HTTP_SCHEMES and parts.hostname:
        _port(parts, url, 80)  # as Argos (pydantic's HttpUrl) refuses a bad one; and 0
        return url
    other = target(url)
    if other is not None:
        return other
    raise ValueError(
        f"expected a URL such as https://example.org, tcp://host:port or "
        f"tls://host:port, got {url!r}"
    )
