"""The Jinja2 environment every view renders with (autoescaping on: agent and site text is
untrusted), and ``render``, which answers an htmx refresh with only the page's live block."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent


def root_path(request: Request) -> str:
    """The prefix the site is served under behind a reverse proxy (Argos's ``root_path``):
    every link of a page starts with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def route_path(request: Request) -> str:
    """The request's path within the application, whether the proxy stripped the prefix
    or not."""
    return scope_path(request.scope)


def scope_path(scope: Any) -> str:
    """``route_path`` of an ASGI scope: what every middleware deciding by path (JSON or HTML
    answers) must test, since under ``root_path`` the scope's path carries the prefix."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path", "")).rstrip("/")
    return path[len(root) :] if root and path.startswith(root + "/") else path


#: What a path may hold unencoded (RFC 3986's ``pchar``, and ``/``).
PATH_SAFE = "/:@!$&'()*+,;=~"


def external_path(request: Request) -> str:
    """The path as the browser sees it (with the prefix), query included: encoded again, as
    the router decoded it (a domain named ``x%41y`` is at ``/domains/x%2541y``, not
    ``/domains/x%41y``, which is ``xAy``'s)."""
    query = request.url.query
    path = quote(root_path(request) + route_path(request), safe=PATH_SAFE)
    return path + (f"?{query}" if query else "")


def return_path(request: Request) -> str:
    """Where to come back to after logging in: the address itself for a page; for a form
    posted (a POST route has no page to show: back there, the browser would get a 405) the
    page it was posted from, as htmx (HX-Current-URL) or the browser (Referer) tells; else
    the dashboard. Only the path and query are kept, so the site's own."""
    if request.method in ("GET", "HEAD"):
        return external_path(request)
    for header in ("hx-current-url", "referer"):
        url = urlsplit(request.headers.get(header, ""))
        if url.path.startswith(root_path(request) + "/") and not url.path.startswith("//"):
            return url.path + (f"?{url.query}" if url.query else "")
    return root_path(request) + "/"


def _root(request: Request) -> dict[str, Any]:
    return {"root": root_path(request)}


templates = Jinja2Templates(directory=HERE / "templates", context_processors=[_root])


def ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = (datetime.now(UTC) - value).total_seconds()
    text = duration(abs(seconds))
    return f"in {text}" if seconds < 0 else f"{text} ago"


def duration(value: float | timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def duration_ms(seconds: float | None) -> str:
    """A short wait in milliseconds, a long one in s/m/h/d."""
    if seconds is None:
        return "—"
    return ms(float(seconds) * 1000) if seconds < 10 else duration(float(seconds))


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def compact_json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def pretty_json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _plain(value: Any) -> Any:
    """JSON from the read models as the configuration's author wrote it: jsonb text
    decoded (once: strings inside stay strings), 200.0 back to 200."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return _integral(value)


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def yaml_inline(value: Any) -> str:
    """A check's setting on one line, as written in YAML: ``200``, ``'"up"'``,
    ``{warning: 200, critical: 1000}``."""
    text = yaml.safe_dump(
        _plain(value), default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**6
    )
    return text.removesuffix("\n...\n").strip()


def yaml_block(value: Any) -> str:
    """A whole structure (a task's definition, an event's data) as block YAML."""
    return yaml.safe_dump(
        _plain(value), default_flow_style=False, sort_keys=False, allow_unicode=True
    ).removesuffix("...\n")


def from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def epoch(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


env = templates.env
env.filters.update(
    ago=ago,
    duration=duration,
    when=when,
    percent=percent,
    ms=ms,
    duration_ms=duration_ms,
    tojson_compact=compact_json,
    pretty_json=pretty_json,
    fromjson=from_json,
    epoch=epoch,
    yaml_inline=yaml_inline,
    yaml_block=yaml_block,
)
env.globals["severities"] = ("critical", "unknown", "warning", "ok", "pending")


def render(
    request: Request, name: str, ctx: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """The whole page, or only its ``live`` block when htmx asks to refresh it."""
    ctx = {
        "request": request,
        "user": getattr(request.state, "user", None),
        "root": root_path(request),
        **ctx,
    }
    if request.headers.get("hx-request") and not request.headers.get("hx-boosted"):
        template = env.get_template(name)
        if "live" in template.blocks:
            body = "".join(template.blocks["live"](template.new_context(ctx)))
            return HTMLResponse(body, status_code=status_code)
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
