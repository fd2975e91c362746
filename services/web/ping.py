"""The ping endpoint of heartbeat monitors: ``/ping/<uuid>``, ``/start``, ``/fail``, ``/<code>``,
each also with a trailing slash.

Open to all (the UUID is the secret, as with healthchecks.io), GET, HEAD or
POST, so ``curl -fsS -m 10 --retry 5 https://tocsin.example/ping/<uuid>`` in a
crontab works. Each ping becomes a ``monitor.pinged`` event in the log, with
the first :data:`BODY_LIMIT` bytes of the body as the run's log; the scheduler
judges it. A monitor pinging more than :data:`RATE` times a minute gets 429:
a runaway loop must not flood the log. When the log cannot take the ping the
answer is 503, which curl's ``--retry`` retries.
"""

from __future__ import annotations

import re
import time
import uuid as uuids
from collections import deque
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse

from events import subjects
from events.types import MonitorPinged, PingKind
from runtime.logs import Log
from services.web import eventlog, recording
from services.web.templating import route_path

log = Log("tocsin.web.ping")
router = APIRouter(include_in_schema=False)

BODY_LIMIT = 10_000
RATE = 30  # pings a minute per monitor
WINDOW = 60.0
METHODS = ["GET", "HEAD", "POST", "PUT"]
#: The ping routes' paths within the application, with or without a trailing slash.
PING_PATH = re.compile(r"/ping/[^/]+(/[^/]+)?/?")


def is_ping(scope: Any) -> bool:
    """Whether an HTTP request is a ping: its path within the application (under any root
    path) is a ping route's. Searched for at the end of the whole path, ``/tasks/ping/check``
    and ``/status/ping/incidents`` were pings too: their bodies read before their callers
    were known, and left unbounded."""
    return PING_PATH.fullmatch(route_path(Request(scope))) is not None


class KeepBody:
    """ASGI middleware: a ping's body is read here, before anything parses it (the web's NUL
    guard parses form bodies, and ``curl --data-binary`` sends one), and kept in the request's
    state: at most :data:`BODY_LIMIT` bytes, the rest read and dropped. The kept part is
    passed on as the body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_ping(scope):
            await self.app(scope, receive, send)
            return
        kept, size = bytearray(), 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body came
            chunk = message.get("body", b"")
            size += len(chunk)
            kept += chunk[: BODY_LIMIT - len(kept)]
            if not message.get("more_body", False):
                break
        scope.setdefault("state", {})["ping_body"] = (bytes(kept), size)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(kept), "more_body": False}

        await self.app(scope, replay, send)


class RateLimit:
    """At most ``rate`` hits per ``window`` seconds per key (a sliding window)."""

    def __init__(self, rate: int = RATE, window: float = WINDOW) -> None:
        self.rate, self.window = rate, window
        self.hits: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float) -> bool:
        hits = self.hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.rate:
            return False
        hits.append(now)
        return True


def _text(status: int, text: str) -> PlainTextResponse:
    return PlainTextResponse(text + "\n", status_code=status)


async def _monitor(request: Request, key: str) -> tuple[str, str] | None:
    """(task, group) of the heartbeat monitor in force with this UUID."""
    async with request.app.state.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, grp FROM tasks WHERE check_kind = 'heartbeat' AND removed_at IS NULL "
            "AND expected->>'uuid' = $1",
            key,
        )
    return (row["id"], row["grp"]) if row else None


async def _ping(request: Request, key: str, kind: PingKind, code: int | None) -> Any:
    try:
        key = str(uuids.UUID(key))
    except ValueError:
        return _text(404, "not found: no heartbeat monitor has this UUID")
    found = await _monitor(request, key)
    if found is None:
        return _text(404, "not found: no heartbeat monitor has this UUID")
    task, group = found
    if not request.app.state.ping_rate.allow(group, time.monotonic()):
        return _text(429, f"rate limited: at most {RATE} pings a minute per monitor")
    body, size = request.state.ping_body
    event = MonitorPinged(
        at=time.time(),
        group=group,
        task=task,
        kind=kind,
        exit_code=code,
        # The log admits no NUL character (nor does PostgreSQL): a binary log keeps its shape.
        body=body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
        body_bytes=size,
        source=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:200].replace("\x00", ""),
    )
    try:
        data = recording.admitted(event)
    except HTTPException as exc:
        return _text(422, str(exc.detail))
    url = request.app.state.auth.settings.nats_url
    if not url:
        return _text(503, "this Tocsin web has no NATS_URL: it cannot record pings")
    try:
        await eventlog.publish(
            request.app.state, url, subjects.pinged(group), data, f"ping.{uuids.uuid4()}"
        )
    except HTTPException as exc:
        log.warning("ping not recorded", group=group, error=exc.detail)
        return _text(503, f"{exc.detail}; retry")
    return _text(200, "OK")


# Each also with a trailing slash: otherwise a redirect (307) to the canonical URL, which
# ``curl -fsS`` without ``-L`` takes for a success, and the ping is never recorded.
@router.api_route("/ping/{key}", methods=METHODS)
@router.api_route("/ping/{key}/", methods=METHODS)
async def ping(request: Request, key: str) -> Any:
    return await _ping(request, key, "success", None)


@router.api_route("/ping/{key}/{action}", methods=METHODS)
@router.api_route("/ping/{key}/{action}/", methods=METHODS)
async def ping_action(request: Request, key: str, action: str) -> Any:
    if action == "start":
        return await _ping(request, key, "start", None)
    if action == "fail":
        return await _ping(request, key, "fail", None)
    if action.isdigit() and int(action) <= 255:
        code = int(action)
        return await _ping(request, key, "success" if code == 0 else "fail", code)
    return _text(404, "not found: use /ping/<uuid>, /start, /fail or /<exit code 0-255>")
