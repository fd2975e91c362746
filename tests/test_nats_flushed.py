"""``tests.helpers.flushed`` is a barrier: a subscription made and flushed on one connection
answers a request from another at once, every time (nats-py's own ``flush()`` can return
before the SUB went out, see the helper)."""

from __future__ import annotations

import nats
from nats.aio.msg import Msg

from runtime.embedded import NatsServer
from tests.helpers import flushed


async def test_a_flushed_subscription_answers_another_connection_at_once(
    nats_server: NatsServer,
) -> None:
    asker = await nats.connect(nats_server.url)
    unanswered = 0
    try:
        for _ in range(300):
            answering = await nats.connect(nats_server.url)

            async def answer(msg: Msg) -> None:
                await msg.respond(b"here")

            await answering.subscribe("barrier.q", cb=answer)
            await flushed(answering)
            try:
                await asker.request("barrier.q", b"", timeout=5)
            except nats.errors.NoRespondersError:
                unanswered += 1
            finally:
                await answering.close()
    finally:
        await asker.close()
    assert unanswered == 0
