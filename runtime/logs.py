"""Structured logs: one ``key=value`` line per event, quiet (warnings) by default."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts = [
            self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={record.getMessage()!r}",
        ]
        parts += [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in fields.items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Stderr(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a line is written, not as it was at ``setup``:
    whoever swapped it since (a test harness capturing output, then closing its stream) gets
    the line, instead of a "Logging error" traceback for a closed file."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


def setup(level: str | None = None) -> None:
    level = (level or os.environ.get("TOCSIN_LOG_LEVEL") or "warning").upper()
    handler = _Stderr()
    handler.setFormatter(_KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries speak only when something is wrong.
    for noisy in ("nats", "asyncio", "uvicorn.access", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.getLogger("asyncio").addFilter(_not_eof_over_tls)


def _not_eof_over_tls(record: logging.LogRecord) -> bool:
    # asyncio says it of every TLS connection nats-py closes (nats-py's protocol returns True
    # from eof_received): a warning of every command over TLS that nothing can act on.
    return not str(record.msg).startswith("returning true from eof_received()")


class Log:
    """A logger whose calls take structured fields: ``log.info("applied", tasks=3)``."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _emit(self, level: int, msg: str, exc: bool, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, msg, exc_info=exc, extra={"fields": fields})

    def debug(self, msg: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, msg, False, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._emit(logging.INFO, msg, False, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._emit(logging.WARNING, msg, False, fields)

    def error(self, msg: str, exc: bool = False, **fields: Any) -> None:
        self._emit(logging.ERROR, msg, exc, fields)
