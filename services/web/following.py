"""The web follows the configuration in force: the settings of the last ``config.applied``.

Each apply's last message carries the whole settings (``configuration/published.py``), so
one direct get of the subject's last message (the web may read the log that way, nothing
more) says what is in force; it is polled, as the scheduler polls. Without NATS the web
keeps the settings of its file.
"""

from __future__ import annotations

import asyncio
from typing import Any

from configuration.inforce import last_settings
from runtime.logs import Log
from services.web.eventlog import connection
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
            await state.runlogs.start(nc)  # agents tell only the runs followed from now on
            seq, logged = await last_settings(nc.jetstream())
            # Nothing applied yet: the file's settings; the first parts of an apply carry
            # none: the last one will.
            if seq != seen and logged is not None:
                follow(settings, logged)
                log.info("configuration in force", seq=seq)
            seen = seq
        except Exception as exc:  # NATS away, a refused apply: the last settings stay
            if str(exc) != failing:  # once per kind of failure, not every poll
                log.warning("could not read the configuration in force", error=str(exc))
            failing = str(exc)
        else:
            failing = ""
        await asyncio.sleep(POLL)
