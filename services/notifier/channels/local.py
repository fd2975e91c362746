"""``local``: a log line, at warning level so the default log level shows it."""

from __future__ import annotations

from services.common.logs import Log
from services.notifier.channels import Recipient
from services.notifier.message import Message, subject

log = Log("tocsin.notifier.local")


def recipients() -> list[Recipient]:
    return [Recipient("log", "log")]


def line(m: Message) -> dict[str, object]:
    return {
        "kind": m.kind,
        "severity": m.severity,
        "previous": m.previous,
        "domain": m.domain,
        "url": m.url,
        "check": m.check,
        "ip_version": m.ip_version,
        "reason": m.reason,
        "task": m.task,
    }


def send(m: Message) -> None:
    log.warning(subject(m).removeprefix("[Tocsin] "), **line(m))
