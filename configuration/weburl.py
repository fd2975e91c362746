"""The URL of an http(s) website's path, made as Argos 0.10.3 makes it.

Argos reads ``domain`` as a pydantic ``HttpUrl`` (the WHATWG form: scheme and host in lower
case, an international name in punycode, no default port, ``/`` for an empty path) and
joins each path to it with ``urljoin``. Tocsin makes the same URLs, so that a path
relative to a domain with a path, ``../up``, ``//cdn.example.net/x`` or a full URL mean
what they meant under Argos, and ``tocsin import argos`` finds each Argos task (it
matches on the URL).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, quote, urljoin, urlsplit, urlunsplit

# The resolver of aiohttp (yarl) and pydantic both use UTS 46 without transitional mapping
# (``straße`` stays ``xn--strae-oqa``); the standard library's codec is IDNA 2003
# (``strasse``).
import idna

from configuration import targets

DEFAULT_PORTS = {"http": 80, "https": 443}
#: What WHATWG leaves as is in a path, a query and a fragment of a special URL: ASCII letters
#: and digits (always kept by ``quote``) and these; the rest (non-ASCII, spaces, quotes,
#: angle brackets, backticks, braces) is percent-encoded as UTF-8.
_PATH_SAFE = "/%:@!$&'()*+,;=[]^|~-._\\"
_QUERY_SAFE = "/%:@!$&()*+,;=[]^|~-._?`{}\\"
_FRAGMENT_SAFE = "/%:@!$&'()*+,;=[]^|~-._?#{}\\"


def _host(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    labels = host.lower().split(".")
    try:
        return ".".join(
            label if label.isascii() else idna.encode(label, uts46=True).decode("ascii")
            for label in labels
        )
    except idna.IDNAError as exc:
        raise ValueError(f"the host name is not a valid internationalized name: {exc}") from None


def normal(url: str) -> str:
    """An http(s) ``domain`` in the form Argos's schema gives it."""
    parts = urlsplit(url)
    netloc = _host(parts.hostname or "")
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(parts.scheme):
        netloc += f":{parts.port}"
    if "@" in parts.netloc:
        netloc = parts.netloc.rpartition("@")[0] + "@" + netloc
    return urlunsplit(
        SplitResult(
            parts.scheme,
            netloc,
            quote(parts.path or "/", safe=_PATH_SAFE),
            quote(parts.query, safe=_QUERY_SAFE),
            quote(parts.fragment, safe=_FRAGMENT_SAFE),
        )
    )


def website(v: object) -> str:
    """A website's ``domain``: its target (configuration/targets.py), an http(s) one in the
    form Argos gives it."""
    url = targets.website(v)
    return normal(url) if urlsplit(url).scheme in targets.HTTP_SCHEMES else url


def join(domain: str, path: str) -> str:
    """The URL Argos checks for ``path`` of the website ``domain`` (already ``normal``)."""
    return urljoin(domain, path)
