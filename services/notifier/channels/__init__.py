"""The notification channels: one module per kind, registered here by its configuration name.

Adding a channel: see docs/adding-a-channel.md.
"""

from __future__ import annotations

import re

from services.notifier.channels.apprise_ import Apprise
from services.notifier.channels.base import Channel, Recipient, SendError
from services.notifier.channels.gotify import Gotify
from services.notifier.channels.local import Local
from services.notifier.channels.mail import Mail
from services.notifier.channels.webhook import Webhook
from services.notifier.message import Message
from services.notifier.settings import NotifySettings

CATALOGUE: dict[str, type[Channel]] = {c.name: c for c in (Local, Mail, Gotify, Apprise, Webhook)}

__all__ = [
    "CATALOGUE",
    "Channel",
    "Recipient",
    "SendError",
    "channel",
    "find",
    "recipients",
    "send",
    "unresolved",
]


def channel(s: NotifySettings, name: str) -> Channel | None:
    """The channel a configuration name stands for (``apprise:team``), or None if unknown."""
    kind, _, option = name.partition(":")
    cls = CATALOGUE.get(kind)
    return cls(s, option) if cls else None


#: A recipient of a channel whose secrets this notifier lacks: its label would be made of
#: masks and change once they are put back, so it is named by its position until then.
UNRESOLVED = re.compile(r"(?P<name>\S+) #(?P<n>[0-9]+) \(secret values unresolved\)")


def recipients(s: NotifySettings, name: str, domain: str | None) -> list[Recipient]:
    ch = channel(s, name)
    if ch is None:
        return []
    found = ch.recipients(domain)
    if ch.missing():
        return [
            Recipient(f"{name} #{n} (secret values unresolved)", "") for n, _ in enumerate(found, 1)
        ]
    return found


def find(s: NotifySettings, name: str, label: str, domain: str | None) -> Recipient | None:
    """The recipient a queued notification's ``label`` names in the settings now; None when
    the channel or its recipient is no longer configured. While the channel lacks secret
    values, the label as it is: ``send`` refuses it, and the notification stays queued."""
    ch = channel(s, name)
    if ch is None:
        return None
    if ch.missing():
        return Recipient(label, "")
    found = ch.recipients(domain)
    exact = next((r for r in found if r.label == label), None)
    if exact is not None:
        return exact
    placeholder = UNRESOLVED.fullmatch(label)
    if placeholder and placeholder["name"] == name and int(placeholder["n"]) <= len(found):
        return found[int(placeholder["n"]) - 1]
    return ch.successor(label, found)


def unresolved(s: NotifySettings) -> dict[str, list[tuple[str, str]]]:
    """Each channel of the settings that lacks secret values → ``(key path, mask)`` of each."""
    names = [
        *(["mail"] if s.mail else []),
        *(["gotify"] if s.gotify else []),
        *(f"apprise:{group}" for group in s.apprise),
        *(f"webhook:{hook}" for hook in s.webhooks),
    ]
    found = {name: ch.missing() for name in names if (ch := channel(s, name)) is not None}
    return {name: missing for name, missing in found.items() if missing}


async def send(s: NotifySettings, name: str, to: Recipient, m: Message) -> None:
    ch = channel(s, name)
    if ch is None:
        raise SendError(f"unknown channel {name!r}")
    missing = ch.missing()
    if missing:
        raise SendError(
            f"{name} lacks secret values applied to it: "
            + ", ".join(f"{path} ({mask})" for path, mask in missing)
            + " are in neither this notifier's file nor its environment; kept queued until "
            "they are (its log says which are missing or stale)"
        )
    await ch.send(to, m)
