"""``mail``: SMTP with implicit TLS (``ssl``), STARTTLS and authentication, as Argos's."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from services.notifier.channels.base import Channel, Recipient, SendError
from services.notifier.message import Message, body, subject
from services.notifier.routing import mail_addresses
from services.notifier.settings import NotifySettings

TIMEOUT = 30.0


def recipients(s: NotifySettings, domain: str | None) -> list[Recipient]:
    if not s.mail:
        return []
    return [Recipient(a, a) for a in mail_addresses(s, domain)]


def build(cfg: dict[str, Any], to: str, m: Message) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject(m)
    msg["From"] = cfg.get("mailfrom", "tocsin@localhost")
    msg["To"] = to
    msg["Date"] = formatdate(m.at, localtime=False)
    # A stable id per notification: a mail client folds a (rare) resend into one.
    msg["Message-ID"] = make_msgid(idstring=m.key.replace(":", ".")[:60], domain="tocsin")
    msg["X-Tocsin-Severity"] = m.severity
    msg.set_content(body(m))
    return msg


def deliver_message(cfg: dict[str, Any], msg: EmailMessage, context: ssl.SSLContext | None) -> None:
    """Send one prepared mail with the channel's SMTP settings (blocking: run in a thread)."""
    host = str(cfg.get("host", "localhost"))
    use_ssl = bool(cfg.get("ssl", False))
    port = int(cfg.get("port") or (465 if use_ssl else 25))
    smtp: smtplib.SMTP
    if use_ssl:
        smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=TIMEOUT)
    with smtp:
        if cfg.get("starttls") and not use_ssl:
            smtp.starttls(context=context)
        auth = cfg.get("auth") or {}
        if auth.get("login"):
            _login(smtp, str(auth["login"]), str(auth.get("password", "")))
        smtp.send_message(msg)


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """PLAIN when offered: one exchange, and a refusal is a clean 535 (``login`` would go on
    to try the next mechanism, which some servers leave hanging after a refusal)."""
    smtp.ehlo_or_helo_if_needed()
    if "PLAIN" in smtp.esmtp_features.get("auth", "").upper().split():
        smtp.user, smtp.password = user, password
        smtp.auth("PLAIN", smtp.auth_plain)
    else:
        smtp.login(user, password)


async def send(
    s: NotifySettings, to: str, m: Message, context: ssl.SSLContext | None = None
) -> None:
    cfg = s.mail or {}
    try:
        await asyncio.to_thread(
            deliver_message, cfg, build(cfg, to, m), context or ssl.create_default_context()
        )
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(f"SMTP authentication refused ({exc.smtp_code})") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"SMTP: {type(exc).__name__}: {exc}") from None


class Mail(Channel):
    name = "mail"
    # smtplib has its own socket timeout (TIMEOUT); this bounds the whole exchange.
    timeout = 2 * TIMEOUT

    def section(self) -> tuple[str, Any]:
        return "general.mail", self.settings.mail

    def recipients(self, domain: str | None) -> list[Recipient]:
        return recipients(self.settings, domain)

    async def deliver(self, to: Recipient, m: Message) -> None:
        await send(self.settings, to.address, m)
