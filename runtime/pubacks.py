"""JetStream publishes waiting for their acknowledgements on one subscription, for a hot path.

``js.publish`` is a request: per message nats-py draws a fresh token (random bytes from the
system) and a future, arms a timer of its own (``asyncio.wait_for``), then parses the answer
into a ``PubAck``, about a tenth of an agent's CPU. Here the token is a counter under one
inbox subscribed once, one timer every :data:`TICK` seconds (while publishes wait) fails those
waiting past the timeout, and an answer is only looked at for an error. As with
``bus.publish_until_acked``, a publish is retried with backoff until JetStream has it, under
the same message id (a retry of one that did land is recorded once).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from runtime.logs import Log

log = Log("tocsin.pubacks")

#: How often the publishes waiting past their timeout are failed (and so retried), seconds.
TICK = 0.5


class PublishError(Exception):
    """JetStream refused the message, or nothing answered in time."""


class AckedPublisher:
    def __init__(self, nc: Client, timeout: float = 5.0) -> None:
        self._nc = nc
        self._timeout = timeout
        self._prefix = ""
        self._next = 0
        #: token → (the future of its answer, when to give up), in the order they went out.
        self._waiting: dict[str, tuple[asyncio.Future[Msg], float]] = {}
        self._timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Subscribe to the answers (under the connection's inbox prefix: an agent's own)."""
        inbox = self._nc.new_inbox()
        self._prefix = f"{inbox}."
        await self._nc.subscribe(f"{inbox}.*", cb=self._answered)

    async def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        """Publish until JetStream acknowledged it."""
        delay = 0.2
        while True:
            try:
                await self._once(subject, data, msg_id)
                return
            except Exception as exc:
                log.warning("publish failed, retrying", subject=subject, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _once(self, subject: str, data: bytes, msg_id: str) -> None:
        loop = asyncio.get_running_loop()
        self._next += 1
        token = str(self._next)
        answer: asyncio.Future[Msg] = loop.create_future()
        self._waiting[token] = (answer, loop.time() + self._timeout)
        if self._timer is None:
            self._timer = loop.call_later(TICK, self._expire, loop)
        try:
            await self._nc.publish(
                subject, data, reply=self._prefix + token, headers={"Nats-Msg-Id": msg_id}
            )
            msg = await answer
        finally:
            self._waiting.pop(token, None)
        if msg.headers and msg.headers.get("Status") == "503":
            raise PublishError(f"no stream takes {subject}")
        if b'"error"' in msg.data:  # a PubAck holds names and numbers only, never that word
            raise PublishError(str(_error(msg.data)))

    async def _answered(self, msg: Msg) -> None:
        entry = self._waiting.get(msg.subject[len(self._prefix) :])
        if entry is not None and not entry[0].done():
            entry[0].set_result(msg)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        waiting = self._waiting
        # Every publish has the same timeout: the first ones in are the first ones due.
        while waiting:
            token, (answer, due) = next(iter(waiting.items()))
            if due > now:
                break
            del waiting[token]
            if not answer.done():
                answer.set_exception(PublishError("no acknowledgement in time"))
        self._timer = loop.call_later(TICK, self._expire, loop) if waiting else None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _error(data: bytes) -> Any:
    try:
        return json.loads(data).get("error")
    except (ValueError, AttributeError):
        return data[:200]
