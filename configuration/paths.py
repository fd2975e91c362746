"""One path of a website: its method, request data and checks, validated strictly."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from checks import CATALOGUE
from checks.base import kind_of
from configuration.reader import FAILED, Reader, closest, join, text
from configuration.yamlsource import Located, Where
from events.types import RequestData
from events.values import argos_bool

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
PATH_KEYS = {"path", "method", "request_data", "checks"}
REQUEST_DATA_KEYS = {"data", "is_json", "headers"}


def request_data(r: Reader, node: Located, path: str) -> RequestData:
    m = r.mapping(node, path, REQUEST_DATA_KEYS)
    is_json = (
        r.convert(m["is_json"], join(path, "is_json"), argos_bool) if "is_json" in m else False
    )
    data = (
        r.convert(m["data"], join(path, "data"), _json_data if is_json is True else _form_data)
        if "data" in m
        else None
    )
    headers: dict[str, str] = {}
    if "headers" in m and m["headers"].value is not None:  # Argos: optional, empty is none
        hm = r.mapping(m["headers"], join(path, "headers"), set(_keys(m["headers"])))
        for name, value in hm.items():
            if not _TOKEN.fullmatch(name):
                r.fail(
                    m["headers"].key_where[name],
                    join(path, "headers"),
                    "a header name is letters, digits and !#$%&'*+-.^_`|~ only",
                )
                continue
            got = r.convert(value, join(path, f"headers.{name}"), _header)
            headers[name] = "" if got is FAILED else got
    return RequestData(
        data=None if data is FAILED else data, is_json=is_json is True, headers=headers
    )


def _json_data(v: Any) -> Any:
    """Any value, sent as JSON (Argos's ``is_json``). A string is taken as JSON text already,
    so it must parse: Argos would send it as one JSON string, which nobody means."""
    if isinstance(v, str):
        try:
            json.loads(v)
        except ValueError as exc:
            raise ValueError(f"is_json is true but data is not JSON: {exc}") from None
    return v


def _form_data(v: Any) -> Any:
    """A mapping sent as a form (values scalars or lists of scalars, as httpx in Argos's
    agent accepts), or a scalar sent as the body."""
    if isinstance(v, dict):
        for key, value in v.items():
            values = value if isinstance(value, list) else [value]
            if any(isinstance(x, dict | list) for x in values):
                raise ValueError(
                    f"form field {key!r}: expected a text, number or list of them "
                    "(set is_json: true to send nested data as JSON)"
                )
        return v
    if isinstance(v, list):
        raise ValueError(
            "a list cannot be sent as a form: set is_json: true to send it as JSON, "
            "or give a mapping of form fields"
        )
    return v


#: RFC 9110 ``token``: what a header name may be.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: Control characters a header value may not hold (RFC 9110 allows tab): CR and LF would
#: split the request, and the agent's HTTP client refuses them all.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _header(v: Any) -> str:
    # Text only, as Argos's schema (``Dict[str, str]``): ``X-Count: 1`` is refused there.
    if not isinstance(v, str):
        raise ValueError(f"expected a header value as text (quote it), got {kind_of(v)}")
    if _CONTROL.search(v):
        raise ValueError("a header value must not hold CR, LF or other control characters")
    return v


def _keys(node: Located) -> list[str]:
    return list(node.value) if isinstance(node.value, dict) else []


class Check(NamedTuple):
    """One check as declared: its kind, its expected value and where it is written."""

    kind: str
    expected: Any
    where: Where
    path: str


def checks(r: Reader, node: Located, path: str, scheme: str) -> list[Check]:
    out: list[Check] = []
    # Argos refuses ``checks:`` left empty and accepts ``[]``: a target that is never checked,
    # valid but hardly what was meant.
    if node.value is None and not node.unset:
        r.fail(node.where, path, "expected a list of checks, got nothing")
    elif node.value == []:
        r.warn(node.where, path, "no checks: nothing is checked here")
    for i, item in enumerate(r.items(node, path)):
        ipath = join(path, i)
        if not isinstance(item.value, dict) or len(item.value) != 1:
            r.fail(item.where, ipath, "each check is a one-key mapping such as 'status-is: 200'")
            continue
        ((name, value),) = item.value.items()
        kind = CATALOGUE.get(name)
        if kind is None:
            hint = closest(name, set(CATALOGUE))
            r.fail(
                item.key_where[name],
                join(ipath, name),
                "unknown check" + (f" (did you mean {hint!r}?)" if hint else ""),
            )
            continue
        if scheme not in kind.SCHEMES:
            schemes = ", ".join(f"{s}://" for s in sorted(kind.SCHEMES))
            r.fail(
                item.key_where[name],
                join(ipath, name),
                f"check {name} does not apply to {scheme}:// targets (only {schemes})",
            )
            continue
        expected = r.convert(value, join(ipath, name), kind.parse)
        if expected is not FAILED:
            out.append(Check(name, expected, item.where, ipath))
    return out


def method(v: Any) -> str:
    # Upper case only, as Argos's schema: ``get`` is refused there.
    name = text(v)
    if name not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise ValueError(f"unknown HTTP method {v!r} (expected one of {known})")
    return name


def url_path(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a path such as /index.html, got {v!r}")
    return v
