"""Real receivers on loopback for the notifier tests: an SMTP server that keeps what it
receives (optionally with STARTTLS and authentication), and an HTTP server that records
gotify and apprise ``json://`` calls and can be told to fail or to hang."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message as EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from runtime.embedded import free_port


class _Keep:
    def __init__(self, box: list[EmailMessage]) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        msg["X-Rcpt"] = ",".join(envelope.rcpt_tos)
        self.box.append(msg)
        return "250 OK"


class SmtpReceiver:
    def __init__(
        self, tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []

        def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and login is not None
                and (data.login.decode(), data.password.decode()) == login
            )
            return AuthResult(success=ok)

        kw: dict[str, Any] = {}
        if tls is not None:
            kw.update(tls_context=tls, require_starttls=True)
        if login is not None:
            kw.update(authenticator=auth, auth_require_tls=tls is not None)
        self.controller = Controller(
            _Keep(self.messages), hostname="127.0.0.1", port=self.port, **kw
        )

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


@dataclass
class HttpReceiver:
    """``POST /message`` (gotify) and ``POST /hook/<name>`` (apprise json://) are recorded."""

    port: int = field(default_factory=free_port)
    calls: list[dict[str, Any]] = field(default_factory=list)
    failures_left: int = 0  # answer 500 to this many calls first
    hanging: int = 0  # leave this many calls first unanswered (recorded apart) until stop()
    hung: list[dict[str, Any]] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    async def _record(self, request: web.Request) -> web.Response:
        if self.hanging > 0:
            self.hanging -= 1
            self.hung.append(await request.json())
            await self.released.wait()
            return web.Response(status=503, text="too late")
        if self.failures_left > 0:
            self.failures_left -= 1
            return web.Response(status=500, text="down for a moment")
        raw = await request.read()
        self.calls.append(
            {
                "path": request.path,
                "headers": dict(request.headers),
                "json": await request.json(),
                "raw": raw,
            }
        )
        return web.json_response({"id": len(self.calls)})

    async def start(self) -> HttpReceiver:
        app = web.Application()
        app.router.add_post("/message", self._record)
        app.router.add_post("/hook/{name}", self._record)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        self.released.set()
        if self.runner:
            await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["path"] == path]
