"""Dead-lettering with authorization on: a request no agent completed leaves WORK, and its
"dead-lettered" verdict is given only while it is the request in force of its group.

An agent stalled (paused, its checks hung) keeps pulling requests and never acks them, so
each comes back until JetStream gives up on it. The scheduler's identity was refused the
deletion of such a request from WORK, and every refusal cost it the 5 s of a request timeout:
dead letters were recorded minutes late, WORK kept them for good, and a group judged ok
since was judged unknown, "dead-lettered", for a request long replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from checks import request
from configuration import config as configuration
from events import codec, streams, subjects
from events.types import CheckRequested, DeadLettered, TaskJudged
from runtime import bus
from runtime.pull import Pull
from services.scheduler.service import Scheduler
from services.scheduler.state import SchedulerOptions
from tests.helpers import ended, wait_for, write_config
from tests.security_support import SecuredBus, connect, start_secured

# "fast": given up (2 s) before JetStream gives up on it (3 deliveries of 1 s), so its dead
# letters come once another request is in force. "slow": still in force when they come.
CONFIG = """
general:
  frequency: 1s
  ipv6: false
  timeout: 1s
  locations: [eu]
websites:
  - domain: http://127.0.0.1:9
    paths:
      - path: /fast
        checks:
          - status-is: 200
  - domain: http://127.0.0.2:9
    frequency: 5s
    paths:
      - path: /slow
        checks:
          - status-is: 200
"""
TUNING = streams.Tuning(ack_wait=1.0, max_deliver=3)


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[tuple[SecuredBus, Client]]:
    sb = start_secured(tmp_path, {"a1": "eu"})
    admin = await connect(sb.url, sb.security("admin"))
    await streams.ensure(admin.jetstream(), ["eu"])
    yield sb, admin
    await admin.close()
    sb.server.stop()


async def _stalled_agent(sb: SecuredBus, stop: asyncio.Event) -> None:
    """Takes the requests of its location and never answers them."""
    nc = await connect(sb.url, sb.security("a1"))
    pull = await Pull(nc, streams.WORK, streams.agent_consumer_name("eu")).start()
    try:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # the consumer not there yet
                await pull.fetch(10, timeout=0.5)
            await asyncio.sleep(0.1)
    finally:
        await pull.close()
        await nc.close()


async def _log(admin: Client) -> list[tuple[int, object]]:
    out = []
    async for msg in bus.replay(admin.jetstream(), subjects.ALL):
        with contextlib.suppress(codec.DecodeError):
            out.append((msg.metadata.sequence.stream, codec.decode(msg.data, msg.subject)))
    return out


def _groups(cfg: configuration.Config) -> dict[str, str]:
    """Path → its request group."""
    return {t.url.rsplit("/", 1)[1]: t.group for t in cfg.tasks.values()}


async def test_dead_letters_leave_work_and_judge_only_the_request_in_force(
    secured: tuple[SecuredBus, Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb, admin = secured
    path = write_config(tmp_path / "c.yaml", CONFIG)
    groups = _groups(configuration.parse(str(path)))
    monkeypatch.setenv("TOCSIN_NATS_CREDS", str(sb.store.creds_path("scheduler")))
    opts = SchedulerOptions(sb.url, str(path), TUNING, security_dir=str(sb.store.dir))
    scheduler = Scheduler(opts)
    running = asyncio.create_task(scheduler.run())
    stop = asyncio.Event()
    stalled = asyncio.create_task(_stalled_agent(sb, stop))
    try:

        async def dead_letters() -> list[DeadLettered]:
            found = [e for _, e in await _log(admin) if isinstance(e, DeadLettered)]
            slow = [d for d in found if d.group == groups["slow"]]
            fast = [d for d in found if d.group == groups["fast"]]
            return found if len(slow) >= 2 and len(fast) >= 2 else []

        found = await wait_for(dead_letters, 60, what="dead letters of both groups")
        js = admin.jetstream()
        for d in found:  # removed before being recorded
            with pytest.raises(NotFoundError):
                await js.get_msg(streams.WORK, d.seq)
        # Each dead-lettered verdict follows the dead letter it judges: that request must be
        # the last one of its group sent before the verdict.
        log = await _log(admin)
        last_sent: dict[str, str] = {}
        last_dead: dict[str, str | None] = {}
        judged = 0
        for _, event in log:
            if isinstance(event, CheckRequested):
                last_sent[event.group] = event.request
            elif isinstance(event, DeadLettered) and event.group:
                last_dead[event.group] = event.request
            elif isinstance(event, TaskJudged) and event.judgements[0].reason.startswith(
                "dead-lettered"
            ):
                assert last_dead[event.group] == last_sent[event.group], (
                    f"group {event.group} judged dead-lettered for {last_dead[event.group]} "
                    f"while {last_sent[event.group]} was in force"
                )
                judged += 1
        assert judged >= 2, "the slow group's dead letters were in force: judged"
        # A request is of no use past its group's give-up time: WORK keeps none longer than
        # the longest one, plus the deliveries that dead-letter it.
        info = await js.stream_info(streams.WORK)
        tasks = list(configuration.parse(str(path)).tasks.values())
        longest = max(request.give_up_after([t]) for t in tasks)
        assert info.config.max_age == longest + TUNING.ack_wait * TUNING.max_deliver
    finally:
        stop.set()
        scheduler.stop()
        await ended(stalled)
        await ended(running)
