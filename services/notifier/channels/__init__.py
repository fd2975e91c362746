"""The notification channels: one module per kind, registered here by its configuration name.

Adding a channel: see docs/adding-a-channel.md.
"""

from __future__ import annotations

from services.notifier.channels.apprise_ import Apprise
from services.notifier.channels.base import Channel, Recipient, SendError
from services.notifier.channels.gotify import Gotify
from services.notifier.channels.local import Local
from services.notifier.channels.mail import Mail
from services.notifier.channels.webhook import Webhook
from services.notifier.message import Message
from services.notifier.settings import NotifySettings

CATALOGUE: dict[str, type[Channel]] = {c.name: c for c in (Local, Mail, Gotify, Apprise, Webhook)}

__all__ = ["CATALOGUE", "Channel", "Recipient", "SendError", "channel", "recipients", "send"]


def channel(s: NotifySettings, name: str) -> Channel | None:
    """The channel a configuration name stands for (``apprise:team``), or None if unknown."""
    kind, _, option = name.partition(":")
    cls = CATALOGUE.get(kind)
    return cls(s, option) if cls else None


def recipients(s: NotifySettings, name: str, domain: str | None) -> list[Recipient]:
    ch = channel(s, name)
    return ch.recipients(domain) if ch else []


async def send(s: NotifySettings, name: str, to: Recipient, m: Message) -> None:
    ch = channel(s, name)
    if ch is None:
        raise SendError(f"unknown channel {name!r}")
    await ch.send(to, m)
