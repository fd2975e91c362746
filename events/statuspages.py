"""Status pages (issue 14): operators' incidents and e-mail subscribers, as events."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from events.fields import Event, Name, Text, Token

IncidentPhase = Literal["investigating", "identified", "monitoring", "resolved"]
Email = Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s<>\"\x00]+@[^@\s<>\"\x00]+$")]


class StatusIncidentPosted(Event, tag="status.incident"):
    """An operator's incident on a status page (the first post of an ``id``) or an update
    of it; ``resolved`` closes it. Written by ``tocsin incident``, the API or the form."""

    id: Token
    page: Token
    phase: IncidentPhase
    message: Text
    by: Name
    #: Given on the first post; an update may leave it empty.
    title: Name = ""
    #: Names of the affected components (as in the page's configuration).
    components: Annotated[list[Name], msgspec.Meta(max_length=100)] = []


class StatusSubscriber(Event, tag="status.subscriber"):
    """An e-mail subscription to a page's incidents: ``requested`` (the notifier mails
    ``token`` in a confirmation link), ``confirmed`` (the link was opened) or ``removed``."""

    page: Token
    email: Email
    state: Literal["requested", "confirmed", "removed"]
    token: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{0,64}$")] = ""
