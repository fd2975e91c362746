"""The secrets of one request, masked in every text said about its run.

The log shows a request's secrets masked (``configuration/redaction.py``) and the agent
gets them sealed (``security/sealing.py``). But what a run says may quote them: aiohttp's
errors end with ``url='…'`` (a bad status line, a bad chunk, headers too large), a check's
detail names the URL it asked (``http-to-https``), a target echoes a header in its body.
A completion goes to the log, the read models, the pages and the notifier, and a run-log
line to whoever watches: each of their texts is masked here, as the log masks the URL —
``••••`` and the fingerprint of the value, so that the failure is still told.

What is secret: every header value (an ``Authorization: Basic`` one also as the
``user:password`` it stands for), the body and the texts in it, the URL's credentials, the
values of query parameters named like secrets, and whatever the URL of the log shows masked
(``${ENV}`` values: the agent finds them where its URL and the log's differ). A value shorter
than ``redaction.MIN_INSIDE`` is masked where it is a whole text, and inside a URL where the
log's URL masks it (a parameter named like a secret, credentials), never in other words.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import msgspec

from configuration import redaction
from events.types import CheckOutcome, CheckRequested, Observation, RequestData
from events.values import MASKED

#: What quoting leaves as it is (and unquoting too).
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]+")
#: A URL inside a text, up to a blank, a quote or an angle bracket (aiohttp quotes it).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


class RequestSecrets:
    """Masks ``values`` (and their URL-encoded spellings) in texts."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        spellings: dict[str, tuple[str, bool]] = {}
        for value in values:
            if not value or MASKED.fullmatch(value):
                continue
            inside = len(value) >= redaction.MIN_INSIDE
            # Most values are tokens, which quoting leaves as they are: no quoting to try.
            for spelling in (value,) if _UNQUOTED.fullmatch(value) else _encodings(value):
                spellings.setdefault(spelling, (value, inside))
        #: Spelling, value, masked inside texts; the longest first, so that a value holding
        #: another is masked whole.
        self._masks = sorted(spellings.items(), key=lambda m: len(m[0]), reverse=True)
        self._short = [s for s, (_, inside) in self._masks if not inside]

    @classmethod
    def of(
        cls, req: CheckRequested, shown_url: str | None = None, values: Iterable[str] = ()
    ) -> RequestSecrets:
        """The secrets of an opened request; ``shown_url``: its URL as the log shows it (the
        agent's request before it was opened), whose masks say which parts are secret."""
        found = set(values) | _in_url(req.url)
        if shown_url is not None and shown_url != req.url:
            found |= _under_masks(shown_url, redaction.credentials(req.url)[0])
        if req.request_data is not None:
            found |= _in_data(req.request_data)
        return cls(found) if found else NO_SECRETS

    def __bool__(self) -> bool:
        return bool(self._masks)

    def text(self, text: str) -> str:
        if not self._masks:
            return text
        if "://" in text:
            text = _URL.sub(self._url, text)
        for spelling, (value, inside) in self._masks:
            if spelling not in text:
                continue
            if text == spelling:
                return redaction.hidden(value)
            if inside:
                text = text.replace(spelling, redaction.hidden(value))
        return text

    def _url(self, match: re.Match[str]) -> str:
        url = match.group(0)
        if not any(short in url for short in self._short):
            return url  # the values' pass masks the longer ones wherever they are
        return redaction.public_url(url)

    def masked(
        self, obs: Observation, outcomes: list[CheckOutcome]
    ) -> tuple[Observation, list[CheckOutcome]]:
        """What was seen and said, every text masked: the observation's error, headers and
        facts, each outcome's detail."""
        if not self._masks:
            return obs, outcomes
        observation = msgspec.structs.replace(
            obs,
            error=None if obs.error is None else self.text(obs.error),
            headers={k: self.text(v) for k, v in obs.headers.items()},
            facts=self._any(obs.facts),
        )
        return observation, [
            msgspec.structs.replace(o, detail=self.text(o.detail)) if o.detail else o
            for o in outcomes
        ]

    def _any(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self._any(k): self._any(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._any(v) for v in value]
        return value


def _encodings(value: str) -> set[str]:
    """How a value may be written in a URL, as written or as the HTTP client quoted it."""
    quoted = {value, quote(value), quote(value, safe=""), quote_plus(value), unquote_plus(value)}
    return quoted - {""}


def _in_url(url: str) -> set[str]:
    """The URL's credentials (as written and as ``user:password``) and the values of its
    query parameters named like secrets."""
    bare, userinfo = redaction.credentials(url)
    found = set()
    if userinfo is not None:
        found |= {userinfo, userinfo.partition(":")[2]}
    if "?" in bare and "://" in bare:
        found |= {
            value
            for name, eq, value in redaction.query_pairs(bare)
            if eq and value and _secret_name(name)
        }
    return found


@lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    """Whether a query parameter named ``name`` (as written) holds a secret: the same names
    come in URL after URL."""
    return redaction.SECRET_PARAMETER.search(unquote_plus(name)) is not None


def _under_masks(shown: str, url: str) -> set[str]:
    """The parts of ``url`` that ``shown`` (the same URL as the log shows it) masks; the whole
    URL when they cannot be told (never seen: the log shows the URL the agent opens)."""
    pieces = MASKED.split(shown)  # literal, fingerprint, literal, … literal
    found = _align(url, pieces[::2], pieces[1::2])
    return {url} if found is None else set(found)


def _align(url: str, literals: list[str], prints: list[str]) -> list[str] | None:
    """The values under the masks: each between the same neighbours as its mask, and of its
    mask's fingerprint (a neighbour may repeat inside a value)."""
    head, *rest = literals
    if not url.startswith(head):
        return None
    url = url[len(head) :]
    if not prints:
        return None if url else []
    end = 0
    while (end := url.find(rest[0], end + 1)) != -1:
        if redaction.fingerprint(url[:end]) == prints[0]:
            found = _align(url[end:], rest, prints[1:])
            if found is not None:
                return [url[:end], *found]
    return None


def _in_data(data: RequestData) -> set[str]:
    """Every header value (a Basic one also decoded), the body as written and its texts."""
    found = set(data.headers.values())
    for value in data.headers.values():
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "basic" and token:
            try:
                pair = base64.b64decode(token, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                continue
            found |= {pair, pair.partition(":")[2]}
    body = data.data
    if isinstance(body, str) and data.is_json:
        found.add(body)  # JSON text already: its texts too, a target may echo one
        with contextlib.suppress(ValueError):
            body = json.loads(body)
    elif body is not None and not isinstance(body, str):
        found.add(msgspec.json.encode(body).decode())
    return found | _texts(body)


def _texts(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {t for v in value.values() for t in _texts(v)}
    if isinstance(value, list):
        return {t for v in value for t in _texts(v)}
    return set()


#: The secrets of a request that has none (most): nothing to mask.
NO_SECRETS = RequestSecrets()
