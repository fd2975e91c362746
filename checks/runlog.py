"""The short log of one run of a request, line by line, for an operator watching it live.

Lines are bounded in count and length and never carry a secret: no request header or body
(they may hold credentials), no URL credentials or query string, only the response headers
the log keeps anyway (``probe.KEPT_HEADERS``), and the request's secrets masked in whatever
else a line quotes (an error, a check's detail: ``checks/masking.py``). The sink is the
agent's publish to a core NATS subject. A run nobody watches (``tocsin check``, and the
agent's runs of the groups no live page follows: ``services/agent/watched.py``) has no run
log at all: the prober then writes no line and traces no request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from checks.masking import NO_SECRETS, RequestSecrets
from events.control import MAX_LINE, MAX_LINES, LogLine, Step

Sink = Callable[[LogLine], Awaitable[None]]


class RunLog:
    """``secrets``: the request's, masked in every line (what a target or the HTTP client
    says may quote them: checks/masking.py)."""

    def __init__(
        self, request: str, agent: str, sink: Sink, secrets: RequestSecrets | None = None
    ) -> None:
        self.request, self.agent, self.sink = request, agent, sink
        self.secrets = secrets or NO_SECRETS
        self.n = 0
        self.started = time.perf_counter()

    def ms(self) -> float:
        # Tenths by truncation: round(x, 1) costs more than the rest of a line (it is exact).
        return int((time.perf_counter() - self.started) * 10_000) / 10

    async def line(self, step: Step, text: str) -> None:
        """One line; past the bound only the last one ("done") still goes out."""
        if self.n >= MAX_LINES or (self.n >= MAX_LINES - 1 and step != "done"):
            return
        self.n += 1
        text = self.secrets.text(text)
        clean = text if text.isprintable() else "".join(c if c.isprintable() else " " for c in text)
        if len(clean) > MAX_LINE:
            clean = clean[: MAX_LINE - 1] + "…"
        try:
            await self.sink(LogLine(self.request, self.agent, self.n, self.ms(), step, clean))
        except Exception:
            pass  # a live log is best effort: the run never waits for, or fails on, a listener


@lru_cache(maxsize=4096)  # each run tells its URL twice; a URL is checked again and again
def safe_url(url: str) -> str:
    """The URL without credentials and with its query elided: what a log line may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))
