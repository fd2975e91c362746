"""``webhook:<name>``: one signed JSON POST to ``general.webhooks[name].url``.

The body is ``payload(m)`` (documented in docs/alerting.md, "The webhook body");
``X-Tocsin-Signature: sha256=<hex>`` is the HMAC-SHA256, keyed with
``general.webhooks[name].secret``, of ``<X-Tocsin-Timestamp>.<body bytes>``: a
receiver recomputes it to know the body came from us, and refuses an old
timestamp so a captured request cannot be replayed later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from services.notifier.channels.base import Channel, Recipient, SendError
from services.notifier.message import Message, body, links, subject, task_page
from services.notifier.settings import NotifySettings

VERSION = 1
TIMEOUT = aiohttp.ClientTimeout(total=20)
SIGNATURE = "X-Tocsin-Signature"
TIMESTAMP = "X-Tocsin-Timestamp"


def label(name: str, url: str) -> str:
    """The receiver without its path or query, which often carry a token."""
    parts = urlsplit(url)
    return f"webhook {name} ({parts.scheme}://{parts.netloc})"


def recipients(s: NotifySettings, name: str) -> list[Recipient]:
    hook = s.webhooks.get(name)
    return [Recipient(label(name, str(hook["url"])), name)] if hook else []


def payload(m: Message) -> dict[str, Any]:
    return {
        "version": VERSION,
        "key": m.key,
        "kind": m.kind,
        "severity": m.severity,
        "previous": m.previous,
        "at": m.at,
        "at_iso": dt.datetime.fromtimestamp(m.at, dt.UTC).isoformat(),
        "task": m.task,
        "domain": m.domain,
        "url": m.url,
        "check": m.check,
        "expected": m.expected,
        "ip_version": m.ip_version,
        "reason": m.reason,
        "failures": m.failures,
        "title": subject(m).removeprefix("[Tocsin] "),
        "text": body(m),
        "links": links(m),
        "group": m.group,
        "members": [
            {
                "task": x.task,
                "severity": x.severity,
                "previous": x.previous,
                "url": x.url,
                "check": x.check,
                "ip_version": x.ip_version,
                "reason": x.reason,
                "link": task_page(m.web_url, x.task) if m.web_url else None,
            }
            for x in m.members
        ],
    }


def sign(secret: str, timestamp: str, data: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + data, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def send(s: NotifySettings, name: str, m: Message) -> None:
    hook = s.webhooks.get(name)
    if hook is None:
        raise SendError(f"webhook {name!r} is no longer configured")
    url, where = str(hook["url"]), label(name, str(hook["url"]))
    data = msgspec.json.encode(payload(m))
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tocsin",
        TIMESTAMP: stamp,
        SIGNATURE: sign(str(hook["secret"]), stamp, data),
    }
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.post(url, data=data, headers=headers, allow_redirects=False) as resp,
        ):
            if resp.status >= 300:
                raise SendError(f"{where} answered {resp.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The exception text may hold the URL (and its token): name only its type.
        raise SendError(f"{where}: {type(exc).__name__}") from None


class Webhook(Channel):
    """``webhook:<name>``: the option names an entry of ``general.webhooks``."""

    name = "webhook"

    def section(self) -> tuple[str, Any]:
        return f"general.webhooks.{self.option}", self.settings.webhooks.get(self.option)

    def recipients(self, domain: str | None) -> list[Recipient]:
        return recipients(self.settings, self.option)

    def successor(self, label: str, found: list[Recipient]) -> Recipient | None:
        # One receiver per webhook, labelled by its URL's host: a notification queued before
        # the URL changed goes to the webhook as it is now.
        return found[0] if found and label.startswith(f"webhook {self.option} (") else None

    async def deliver(self, to: Recipient, m: Message) -> None:
        await send(self.settings, to.address, m)
