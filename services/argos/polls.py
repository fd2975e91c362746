"""An Argos agent's poll answered with what the work queue holds now, as Argos's server
answers it from its database: no wait when there is nothing, and polls side by side.

nats-py's ``fetch`` waits for its timeout when the queue is empty (a second a poll), and
two fetches on one subscription share its queue (so the gateway took them one at a time:
eight agents polling at once waited up to eight seconds, past their client's five). Here
each poll is one JetStream pull request with ``no_wait`` on its own inbox: the server
answers at once with up to ``batch`` messages, then a status saying there are no more (or
with that status alone).
"""

from __future__ import annotations

import json

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from runtime.logs import Log

log = Log("tocsin.argos")
#: Statuses that end a pull as expected: no (more) messages, the request is over. ``100`` is
#: a heartbeat, not an end; any other (409 a consumer's limit, 503 no consumer yet) is told.
_DONE = {"404", "408"}
_ALIVE = "100"
_NO_CONSUMER = "503"


class Poller:
    """Pulls of one durable consumer of ``stream``; ``domain``: the hub's JetStream domain."""

    def __init__(self, nc: Client, stream: str, durable: str, domain: str | None) -> None:
        prefix = f"$JS.{domain}.API" if domain else "$JS.API"
        self.nc, self.subject = nc, f"{prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.said = ""

    async def take_now(self, batch: int, wait: float = 5.0) -> list[Msg]:
        """Up to ``batch`` messages the consumer has now; ``[]`` at once if none. ``wait``: how
        long the server's answer may take (a link that does not answer gives what came)."""
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        msgs: list[Msg] = []
        try:
            request = {"batch": batch, "no_wait": True}
            await self.nc.publish(self.subject, json.dumps(request).encode(), reply=inbox)
            while len(msgs) < batch:
                msg = await sub.next_msg(timeout=wait)
                status = msg.headers.get("Status") if msg.headers else None
                if status is None:
                    msgs.append(msg)
                elif status != _ALIVE:
                    self._told(status, (msg.headers or {}).get("Description", ""))
                    break
        except NatsTimeout:
            self._told("timeout", f"no answer from JetStream within {wait:g}s")
        finally:
            await sub.unsubscribe()
        return msgs

    def _told(self, status: str, description: str) -> None:
        """An unexpected end is logged once while it lasts, not on every poll."""
        reason = "" if status in _DONE else f"{status} {description}".strip()
        if status == _NO_CONSUMER:
            reason = "work consumer not there yet; is the scheduler running?"
        if reason and reason != self.said:
            log.warning("work queue did not answer a poll", reason=reason)
        self.said = reason
