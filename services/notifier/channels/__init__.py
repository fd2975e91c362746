"""Channels: each module lists its recipients (labels without secrets) and sends one message.

A recipient's ``label`` is what the log and the outbox record (an address, a
URL with its token masked); the secret-bearing address is looked up in the
configuration at send time, so PostgreSQL and the event log never hold it.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.notifier.message import Message
from services.notifier.settings import NotifySettings


@dataclass(frozen=True)
class Recipient:
    label: str
    address: str


class SendError(Exception):
    """A send that did not go through; ``str()`` is safe to record (no secrets)."""


def recipients(s: NotifySettings, channel: str, domain: str | None) -> list[Recipient]:
    from services.notifier.channels import apprise_, gotify, local, mail

    if channel == "local":
        return local.recipients()
    if channel == "mail":
        return mail.recipients(s, domain)
    if channel == "gotify":
        return gotify.recipients(s)
    if channel.startswith("apprise:"):
        return apprise_.recipients(s, channel.removeprefix("apprise:"))
    return []


async def send(s: NotifySettings, channel: str, to: Recipient, m: Message) -> None:
    from services.notifier.channels import apprise_, gotify, local, mail

    if channel == "local":
        local.send(m)
    elif channel == "mail":
        await mail.send(s, to.address, m)
    elif channel == "gotify":
        await gotify.send(to.address, m)
    elif channel.startswith("apprise:"):
        await apprise_.send(to.address, m)
    else:
        raise SendError(f"unknown channel {channel!r}")
