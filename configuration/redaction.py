"""What of a task the log, the read models and the pages may show.

Request headers, request bodies and credentials in URLs are secret by default,
whatever their names: the log shows ``••••`` followed by a short fingerprint of
the value, so an operator still sees in a diff that a secret changed, never the
secret. Values that came from ``${ENV}`` are hidden wherever else they appear, and
so are the values of query parameters named like secrets (``?token=…``, ``api_key``,
``sig`` …). The real values stay in the configuration file; agents get them sealed
to their location's key (``security/sealing.py``).
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

import msgspec

from events.types import RequestData, TaskDef
from events.values import MASK, MASKED


def fingerprint(value: str) -> str:
    """Eight hex digits of SHA-256: enough to tell two values apart in a diff."""
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def hidden(value: object) -> str:
    """``••••`` and the fingerprint of ``value`` (a body that is not text: of its JSON); a
    mask already stays as it is, so that masking twice keeps the fingerprint."""
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return text if MASKED.fullmatch(text) else f"{MASK}{fingerprint(text)}"


def credentials(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:password@`` part, and that part (None when there is none).
    A website's domain is kept as ``host[:port]``, credentials included, without a scheme."""
    if "@" not in url:  # most URLs: no parse (the scheduler asks for every request it sends)
        return url, None
    if "://" not in url:
        userinfo, at, host = url.rpartition("@")
        return (host, userinfo) if at else (url, None)
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=host)), userinfo


#: Query parameters whose value is a secret whatever the file says (``?token=…``): a
#: literal one is masked too, as a ``${ENV}`` one is.
SECRET_PARAMETER = re.compile(
    r"token|secret|passw|pwd|api[-_]?key|access[-_]?key|^key$|^auth|signature|^sig$|session"
    r"|^jwt$|credential",
    re.IGNORECASE,
)


def public_url(url: str, secrets: set[str] | frozenset[str] = frozenset()) -> str:
    """``url`` as it may be shown: credentials, values of query parameters named like
    secrets, and ``${ENV}`` values masked."""
    bare, userinfo = credentials(url)
    if userinfo is not None and "://" not in url:
        url = f"{hidden(userinfo)}@{bare}"
    elif userinfo is not None:
        parts = urlsplit(bare)
        url = urlunsplit(parts._replace(netloc=f"{hidden(userinfo)}@{parts.netloc}"))
    if "://" in url and "?" in url:
        parts = urlsplit(url)
        query = _public_query(parts.query)
        if query != parts.query:  # else as written: a URL is a task's name
            url = urlunsplit(parts._replace(query=query))
    return mask_secrets(url, secrets)


def domain_key(domain: str, secrets: set[str] | frozenset[str] = frozenset()) -> str:
    """The one spelling a website's domain is looked up by (recipients, silences,
    maintenance, ``depends_on``): as the log shows it, credentials and secrets masked. The
    file's spelling (``user:pass@host``) and the log's (``••••1a2b3c4d@host``) are the same
    key; so is a URL of the website (``http://user:pass@host/``)."""
    return public_url(urlsplit(domain).netloc if "://" in domain else domain, secrets)


def _public_query(query: str) -> str:
    out = []
    for name, eq, value in (pair.partition("=") for pair in query.split("&")):
        secret = eq and value and SECRET_PARAMETER.search(unquote_plus(name))
        out.append(f"{name}={hidden(value)}" if secret else f"{name}{eq}{value}")
    return "&".join(out)


#: What makes ``urlsplit`` strip, drop or refuse characters of a URL (control characters and
#: blanks, IPv6 brackets): a URL without any has as query what follows its first ``?`` up
#: to its fragment (its scheme and authority hold neither ``?`` nor ``#``).
_SPLIT_WITH_CARE = re.compile(r"[\x00-\x20\[\]]")


def query_pairs(url: str) -> list[tuple[str, str, str]]:
    """``(name, "=", value)`` of each part of ``url``'s query string, as written. Without
    ``urlsplit`` for a plain ASCII URL: an agent reads every request's URL (``checks/
    masking.py``), and a parse of each was 4 % of its CPU (py-spy)."""
    if url.isascii() and not _SPLIT_WITH_CARE.search(url):
        query = url.partition("#")[0].partition("?")[2]
    else:
        query = urlsplit(url).query
    return [pair.partition("=") for pair in query.split("&")]


#: A secret shorter than this is masked where it is the whole text only: inside others it
#: would be masked in unrelated words and figures (a webhook secret ``s`` turned ``1s`` and
#: ``localhost:8000`` into masks, and the settings in the log no longer read).
MIN_INSIDE = 8


def mask_secrets(text: str, secrets: set[str] | frozenset[str]) -> str:
    """``text`` with every occurrence of a secret value replaced by its mask (the longest
    first, so a secret containing another is masked whole)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if not secret or secret not in text:
            continue
        if text == secret:
            return hidden(secret)
        if len(secret) >= MIN_INSIDE:
            text = text.replace(secret, hidden(secret))
    return text


def unmask(text: str, known: dict[str, str]) -> str:
    """``text`` with each mask whose value is in ``known`` (fingerprint → value) replaced by
    that value; the others stay masked."""
    return MASKED.sub(lambda m: known.get(m.group(1), m.group(0)), text)


def redact(task: TaskDef, secrets: set[str] | frozenset[str] = frozenset()) -> TaskDef:
    """The task as the log may show it (its id, derived from the real values, is kept)."""
    rd = task.request_data
    shown = None
    if rd is not None:
        shown = RequestData(
            data=None if rd.data is None else hidden(rd.data),
            is_json=rd.is_json,
            headers={k: hidden(v) for k, v in rd.headers.items()},
        )
    return msgspec.structs.replace(
        task,
        url=public_url(task.url, secrets),
        domain=public_url(task.domain, secrets),
        request_data=shown,
    )


def is_redacted(task: TaskDef) -> bool:
    """True when ``task`` shows masks where real values must be sent."""
    rd = task.request_data
    masked = rd is not None and (
        (isinstance(rd.data, str) and rd.data.startswith(MASK))
        or any(v.startswith(MASK) for v in rd.headers.values())
    )
    return masked or MASK in task.url
