"""A bound on request bodies, checked before anything reads them: a body announced larger
than the limit is a 413 at once, and one streamed past it (no Content-Length, or a false
one) stops being read at the limit, with the same 413. Four anonymous 200 MB posts held
400 MB of the web before; the web (1 MiB: nothing it accepts comes near) and ``tocsin argos``
(agents' batches of results) each set theirs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

BODY_LIMIT = 1 << 20


def _too_large(path: str, machine: tuple[str, ...], limit: int) -> Response:
    message = f"request body too large: at most {limit} bytes"
    if path.startswith(machine):
        return JSONResponse({"detail": message}, 413, headers={"Connection": "close"})
    return Response(
        f"<!doctype html><title>413 · Tocsin</title><h1>413</h1><p>{message}.</p>",
        413,
        media_type="text/html",
        headers={"Connection": "close"},
    )


class BodyLimit:
    """ASGI middleware: Content-Length checked first, then every chunk counted. ``machine``:
    path prefixes answered in JSON (others in HTML); ``exempt``: requests left unbounded."""

    def __init__(
        self,
        app: Any,
        machine: tuple[str, ...] = (),
        limit: int = BODY_LIMIT,
        exempt: Callable[[Any], bool] = lambda scope: False,
    ) -> None:
        self.app, self.machine, self.limit, self.exempt = app, machine, limit, exempt

    def path(self, scope: Any) -> str:
        """The path that chooses JSON or HTML for the 413."""
        return str(scope.get("path", ""))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = self.path(scope)
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.limit:
            await _too_large(path, self.machine, self.limit)(scope, receive, send)
            return
        size = 0
        over = answered = started = False

        async def bounded() -> Any:
            # Past the limit the app is told the client left: it stops reading, whatever it
            # is (a route, the form guard, a middleware), and its answer is replaced below.
            # (An exception raised here reaches a route wrapped by the middlewares' task
            # groups, and FastAPI makes any such error a 400.)
            nonlocal size, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def answer(message: Any) -> None:
            nonlocal answered, started
            if not over or started:  # a response begun before the limit goes on as it was
                started = True
                await send(message)
            elif not answered:
                answered = True
                await _too_large(path, self.machine, self.limit)(scope, receive, send)

        try:
            await self.app(scope, bounded, answer)
        except Exception:
            if not over:
                raise
        if over and not answered and not started:
            answered = True
            await _too_large(path, self.machine, self.limit)(scope, receive, send)
