"""Status-page subscribers by e-mail: the confirmation mail of the double opt-in, then a
mail per incident update to the confirmed subscribers of the page.

Subscribers are folded from the log (``status.subscriber`` events, replayed at start);
new status events come through a durable consumer that starts at new events, so a restart
never mails history again. Mails go through the mail channel's SMTP settings (``general.mail``).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events import codec, streams, subjects
from events.types import StatusIncidentPosted, StatusSubscriber
from runtime import bus
from runtime.logs import Log
from services.notifier.channels import mail

log = Log("tocsin.notifier.status")
CONSUMER = "notifier-status"

#: page → e-mail → state ("requested", "confirmed", "removed").
Subscribers = dict[str, dict[str, str]]


def fold(subs: Subscribers, ev: StatusSubscriber) -> None:
    subs.setdefault(ev.page, {})[ev.email] = ev.state


def confirmed(subs: Subscribers, page: str) -> list[str]:
    return sorted(e for e, state in subs.get(page, {}).items() if state == "confirmed")


def confirmation(ev: StatusSubscriber, web_url: str, sender: str) -> EmailMessage:
    msg = _message(sender, ev.email, f"Confirm your subscription to {ev.page} status updates")
    msg.set_content(
        "Someone, hopefully you, asked to get an e-mail for each incident update of the\n"
        f"status page {web_url}/status/{ev.page}.\n\n"
        f"To confirm, open this link and press Confirm:\n"
        f"{web_url}/status/{ev.page}/confirm?token={ev.token}\n\n"
        "If it was not you, ignore this mail: nothing will be sent.\n"
    )
    return msg


def update(
    ev: StatusIncidentPosted, title: str, to: str, web_url: str, sender: str
) -> EmailMessage:
    msg = _message(sender, to, f"[{ev.page}] {title or ev.id}: {ev.phase}")
    lines = [f"{title or ev.id}: {ev.phase}", "", ev.message, ""]
    if ev.components:
        lines.append(f"Affects: {', '.join(ev.components)}")
    lines.append(f"Status page: {web_url}/status/{ev.page}#incident-{ev.id}")
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _message(sender: str, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="tocsin")
    return msg


class StatusMailer:
    def __init__(self, get_mail: Any, web_url: str | None) -> None:
        #: Read at each send, so a configuration reload applies.
        self.get_mail = get_mail
        self.web_url = (web_url or "http://localhost:8000").rstrip("/")
        self.subs: Subscribers = {}
        self.titles: dict[str, str] = {}

    async def start(self, js: Any) -> None:
        """Make sure the durable consumer of new status events exists, then fold every
        subscriber and incident title on record (in this order, so an event landing in
        between is folded twice, harmlessly, rather than missed)."""
        await js.add_consumer(
            streams.EVENTS,
            ConsumerConfig(
                durable_name=CONSUMER,
                filter_subject=subjects.STATUS_ALL,
                deliver_policy=DeliverPolicy.NEW,
                ack_policy=AckPolicy.EXPLICIT,
            ),
        )
        async for msg in bus.replay(js, subjects.STATUS_ALL):
            self._fold(msg.data, msg.subject)

    def _fold(self, data: bytes, subject: str) -> StatusIncidentPosted | StatusSubscriber | None:
        try:
            ev = codec.decode(data, subject)
        except codec.DecodeError:
            return None
        if isinstance(ev, StatusSubscriber):
            fold(self.subs, ev)
            return ev
        if isinstance(ev, StatusIncidentPosted):
            if ev.title:
                self.titles[ev.id] = ev.title
            return ev
        return None

    async def run(self, js: Any, stopping: asyncio.Event) -> None:
        sub = await js.pull_subscribe_bind(durable=CONSUMER, stream=streams.EVENTS)
        puller = bus.Puller(sub, "status events")
        while not stopping.is_set():
            for msg in await puller.fetch(50):
                ev = self._fold(msg.data, msg.subject)
                if ev is not None:
                    await self._mail(ev)
                await msg.ack()

    async def _mail(self, ev: StatusIncidentPosted | StatusSubscriber) -> None:
        cfg = self.get_mail()
        if not cfg:
            log.warning("status page mail skipped: no general.mail in the configuration")
            return
        sender = str(cfg.get("mailfrom", "tocsin@localhost"))
        if isinstance(ev, StatusSubscriber):
            if ev.state != "requested":
                return
            mails = [confirmation(ev, self.web_url, sender)]
        else:
            title = self.titles.get(ev.id, "")
            mails = [
                update(ev, title, to, self.web_url, sender) for to in confirmed(self.subs, ev.page)
            ]
        for m in mails:
            try:
                await asyncio.to_thread(mail.deliver_message, cfg, m, ssl.create_default_context())
            except (smtplib.SMTPException, OSError) as exc:
                # No outbox for these: a subscriber may miss one update, never gets two.
                log.error("status page mail failed", to=m["To"], error=str(exc))
