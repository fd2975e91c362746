"""The web follows the configuration in force: the settings of the last ``config.applied``.

Each apply's last message carries the whole settings (``configuration/published.py``), so
one direct get of the subject's last message (the web may read the log that way, nothing
more) says what is in force; it is polled, as the scheduler polls. Without NATS the web
keeps the settings of its file.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.js.errors import NotFoundError

from events import codec, streams, subjects
from events.types import ConfigApplied
from runtime.logs import Log
from services.web.checknow import connection
from services.web.settings import WebSettings, follow

log = Log("tocsin.web.config")

#: Seconds between two looks at the last ``config.applied``.
POLL = 2.0


async def follow_config(state: Any, settings: WebSettings) -> None:
    """Run until cancelled: each new apply's settings into ``settings``."""
    assert settings.nats_url is not None
    seen, failing = 0, ""
    while True:
        try:
            nc = await connection(state, settings.nats_url)
            raw = await nc.jetstream().get_last_msg(
                streams.EVENTS, subjects.CONFIG_APPLIED, direct=True
            )
            if raw.seq != seen:
                seen = raw.seq
                ev = codec.decode(raw.data, subjects.CONFIG_APPLIED)
                # The first parts of an apply carry no settings: the last one will.
                if isinstance(ev, ConfigApplied) and ev.settings is not None:
                    follow(settings, ev.settings)
                    log.info("configuration in force", revision=ev.revision[:12])
        except NotFoundError:
            pass  # nothing applied yet: the file's settings
        except Exception as exc:  # NATS away, a refused apply: the last settings stay
            if str(exc) != failing:  # once per kind of failure, not every poll
                log.warning("could not read the configuration in force", error=str(exc))
            failing = str(exc)
        else:
            failing = ""
        await asyncio.sleep(POLL)
