"""``apprise:<group>``: every URL of ``general.apprise[group]`` through the apprise library
(Matrix, Mastodon, Slack, Telegram, ntfy, Discord, webhooks …)."""

from __future__ import annotations

from typing import Any

import apprise

from services.notifier.channels.base import Channel, Recipient, SendError
from services.notifier.message import Message, body, subject
from services.notifier.settings import NotifySettings

NOTIFY_TYPE = {
    "ok": apprise.NotifyType.SUCCESS,
    "warning": apprise.NotifyType.WARNING,
    "critical": apprise.NotifyType.FAILURE,
    "unknown": apprise.NotifyType.WARNING,
}


def label(url: str) -> str:
    """The URL with its secrets masked by apprise itself (``****``), query options dropped."""
    plugin = apprise.Apprise.instantiate(url)
    if not plugin:
        return url.split("://", 1)[0] + "://(invalid URL)"
    return str(plugin.url(privacy=True)).split("?", 1)[0]


def recipients(s: NotifySettings, group: str) -> list[Recipient]:
    return [Recipient(label(u), u) for u in s.apprise.get(group) or []]


async def send(address: str, m: Message) -> None:
    ap = apprise.Apprise()
    if not ap.add(address):
        raise SendError(f"apprise cannot use the URL {label(address)}")
    ok = await ap.async_notify(
        body=body(m),
        title=subject(m).removeprefix("[Tocsin] "),
        notify_type=NOTIFY_TYPE.get(m.severity, apprise.NotifyType.INFO),
    )
    if not ok:
        raise SendError(f"apprise could not notify {label(address)}")


class Apprise(Channel):
    """``apprise:<group>``: the option names the group of URLs."""

    name = "apprise"

    def section(self) -> tuple[str, Any]:
        return f"general.apprise.{self.option}", self.settings.apprise.get(self.option)

    def recipients(self, domain: str | None) -> list[Recipient]:
        return recipients(self.settings, self.option)

    async def deliver(self, to: Recipient, m: Message) -> None:
        await send(to.address, m)
