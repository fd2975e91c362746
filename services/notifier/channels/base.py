"""What every channel shares: recipients without secrets, a bounded send, safe errors.

A recipient's ``label`` is what the log and the outbox record (an address, a URL with its token
masked); the secret-bearing ``address`` is looked up in the configuration at send time, so
PostgreSQL and the event log never hold it.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from configuration import published
from services.notifier.message import Message
from services.notifier.settings import NotifySettings


@dataclass(frozen=True)
class Recipient:
    label: str
    address: str


class SendError(Exception):
    """A send that did not go through; ``str()`` is safe to record (no secrets)."""


class Channel(ABC):
    """One kind of receiver. ``name`` is how the configuration names it (``mail``); a channel
    that takes an option is written ``name:option`` (``apprise:team``)."""

    name: ClassVar[str]
    #: Seconds one send may take before it counts as failed (and is retried later).
    timeout: ClassVar[float] = 30.0

    def __init__(self, settings: NotifySettings, option: str = "") -> None:
        self.settings, self.option = settings, option

    def section(self) -> tuple[str, Any]:
        """Where this channel's settings are (``general.webhooks.ops``) and what they hold."""
        return "", None

    def missing(self) -> list[tuple[str, str]]:
        """``(key path, mask)`` of each secret value of this channel that this notifier lacks:
        applied from another file, the log holds it masked, and neither this notifier's file
        nor its environment had it. The channel cannot send until it has them all."""
        where, value = self.section()
        return published.masks(value, where)

    def successor(self, label: str, found: list[Recipient]) -> Recipient | None:
        """The recipient that a queued notification's ``label`` (not among ``found``) stands
        for now: none, unless the label is made of a value that may change under the same
        recipient (a webhook's URL)."""
        return None

    @abstractmethod
    def recipients(self, domain: str | None) -> list[Recipient]:
        """Who gets a message about ``domain`` (None: a message about no domain)."""

    @abstractmethod
    async def deliver(self, to: Recipient, m: Message) -> None:
        """Send ``m`` to ``to``; raise SendError (never a secret in its text) if it failed."""

    async def send(self, to: Recipient, m: Message) -> None:
        try:
            await asyncio.wait_for(self.deliver(to, m), self.timeout)
        except TimeoutError:
            raise SendError(f"{self.name} {to.label}: no answer in {self.timeout:g} s") from None
