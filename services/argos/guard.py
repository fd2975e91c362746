"""The gateway's door: the agent's token before its body, then a bound on the body.

FastAPI reads and parses a route's body before it solves the token's dependency: a 69 MB
post without a token was read whole (the gateway grew by 600 MB, other agents' polls
stalled 14-18 s) before its 401. Here a request without a valid token reaches the routes
with an empty body, so the dependency answers it as before (Argos's 401 or 403) and nothing
of the body is read; one with a valid token is bounded (``runtime/bodylimit.py``, 413).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.bodylimit import BodyLimit

#: A poll hands out at most 1,000 task groups; each result's context may hold the traceback
#: of a request that failed (a few kB): 1,000 groups of a few checks fit well within this.
RESULTS_LIMIT = 16 << 20


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class TokenFirst:
    """ASGI middleware: ``Authorization: Bearer T`` with T in ``tokens()`` (read on each
    request: a reload changes them) before anything of the body is read."""

    def __init__(self, app: Any, tokens: Callable[[], set[str]]) -> None:
        self.app = app
        self.bounded = BodyLimit(app, machine=("/",), limit=RESULTS_LIMIT)
        self.tokens = tokens

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif self._bearer(scope) in self.tokens():
            await self.bounded(scope, receive, send)
        else:
            await self.app(scope, _no_body, send)

    @staticmethod
    def _bearer(scope: Any) -> str | None:
        value = dict(scope.get("headers", ())).get(b"authorization", b"").decode("latin-1")
        scheme, _, credentials = value.partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" else None
