"""``gotify``: one message per (server, application token)."""

from __future__ import annotations

from typing import Any

import aiohttp

from services.notifier.channels.base import Channel, Recipient, SendError
from services.notifier.message import Message, body, gotify_priority, subject
from services.notifier.settings import NotifySettings

TIMEOUT = aiohttp.ClientTimeout(total=20)


def recipients(s: NotifySettings) -> list[Recipient]:
    out = []
    for server in s.gotify:
        url = str(server.get("url", "")).rstrip("/")
        for i, token in enumerate(server.get("tokens") or []):
            # The token is the secret: the label names the server and the token's position.
            out.append(Recipient(f"{url} token #{i + 1}", f"{url}\n{token}"))
    return out


def payload(m: Message) -> dict[str, object]:
    return {
        "title": subject(m).removeprefix("[Tocsin] "),
        "message": body(m),
        "priority": gotify_priority(m),
        "extras": {"client::display": {"contentType": "text/plain"}},
    }


async def send(address: str, m: Message) -> None:
    url, _, token = address.partition("\n")
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.post(
                f"{url}/message", json=payload(m), headers={"X-Gotify-Key": token}
            ) as resp,
        ):
            if resp.status >= 300:
                raise SendError(f"gotify {url} answered {resp.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SendError(f"gotify {url}: {type(exc).__name__}: {exc}") from None


class Gotify(Channel):
    name = "gotify"

    def section(self) -> tuple[str, Any]:
        return "general.gotify", self.settings.gotify

    def recipients(self, domain: str | None) -> list[Recipient]:
        return recipients(self.settings)

    async def deliver(self, to: Recipient, m: Message) -> None:
        await send(to.address, m)
