"""``local``: a log line, at warning level so the default log level shows it."""

from __future__ import annotations

from runtime.logs import Log
from services.notifier.channels.base import Channel, Recipient
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


class Local(Channel):
    name = "local"

    def recipients(self, domain: str | None) -> list[Recipient]:
        return recipients()

    async def deliver(self, to: Recipient, m: Message) -> None:
        send(m)
