"""A scheduler paused past its lease (SIGSTOP: a VM frozen, a swap storm, a debugger) loses
the lease and holds it again once it runs: dispatching never stops for good.

Resumed, every timer of the paused process fires at once and the answers of its requests
land together: the lease renewal finds the lease expired and ends the term while its loops
are answered, so the cancellation that ends them lands as their ``wait_for`` completes, which
Python 3.11 drops. A loop that dropped it ran on, the term never ended, and the scheduler
dispatched nothing again, holding no lease (a pause of about a minute, with the default TTL,
every time). Here the lease lasts a second and the pause a few.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import asyncpg
from nats.aio.client import Client
from nats.aio.msg import Msg

from configuration import config as configuration
from events import codec, subjects
from events.types import MonitorPinged, TaskDef
from readmodel import SCHEMA
from runtime import bus
from tests.faults.conftest import PATHS
from tests.faults.harness import Service, Services, count, wait_projected
from tests.helpers import wait_for

TTL = 1.0
#: Pauses in a row: each one is a chance for the race, which does not come every time.
PAUSES = 6
#: Past the give-up time of the fault tests' requests (twice their 5 s timeout), and far past
#: a host's silence (1.5 of its 1 s interval).
PAST_GIVE_UP = 15.0


JOB_URL = "heartbeat://job"
#: A job pinging all along, late after 4 s without a ping.
JOB = f"""  - domain: {JOB_URL}
    checks:
      - heartbeat: {{uuid: 6f1c1bd2-5a43-4cb6-9d55-0a3f1f7e2b10, period: 2s, grace: 2s}}
"""
#: One host figure judged, at a level it cannot pass: the machine's own disk, memory or load
#: (a CI machine's disk 81 % full) is not this test's to judge.
HOSTS = """hosts:
  cpu: {warning: 100}
  memory: false
  swap: false
  load: false
  disk: false
  inodes: false
"""


async def _ping_forever(nc: Client, job: TaskDef) -> None:
    """As the web records a ping of the job's URL, twice a second."""
    js = nc.jetstream()
    while True:
        ping = MonitorPinged(at=time.time(), group=job.group, task=job.id, kind="success")
        await bus.publish_until_acked(
            js, subjects.pinged(job.group), codec.encode(ping), f"ping.{uuid.uuid4()}"
        )
        await asyncio.sleep(0.5)


async def _judged_ok(svc: Services) -> bool:
    """Every check (two per path), the job and some host figure judged ok."""
    checks = "SELECT count(*) FROM tasks WHERE severity = 'ok' AND method <> 'HOST'"
    host = "SELECT count(*) FROM tasks WHERE severity = 'ok' AND method = 'HOST'"
    return await count(svc.database_url, checks) == 2 * len(PATHS) + 1 and bool(
        await count(svc.database_url, host)
    )


async def _judged_after(svc: Services, t: float) -> bool:
    query = "SELECT count(*) FROM requests WHERE judged_at > to_timestamp($1)"
    return await count(svc.database_url, query, t) > 0


def _short_lease_scheduler(svc: Services) -> Service:
    return svc._start(
        "scheduler",
        [svc.nats_url, str(svc.config), str(TTL)],
        module="tests.faults.shortlease",
    )


async def test_a_scheduler_paused_past_its_lease_dispatches_again(svc: Services) -> None:
    svc.agent("a1")
    scheduler = _short_lease_scheduler(svc)
    nc = await bus.connect(svc.nats_url, "test")
    sent: list[float] = []

    async def requested(_: Msg) -> None:
        sent.append(time.monotonic())

    await nc.subscribe(subjects.REQUESTED_ALL, cb=requested)

    async def dispatching_since(t: float) -> bool:
        return any(at > t for at in sent)

    async def terms(n: int) -> bool:
        return scheduler.output().count("scheduler lease acquired") >= n

    try:
        await wait_for(lambda: dispatching_since(0), 30, what="dispatching")
        for pause in range(1, PAUSES + 1):
            scheduler.signal(signal.SIGSTOP)
            await asyncio.sleep(3 * TTL)
            scheduler.signal(signal.SIGCONT)
            await wait_for(
                lambda n=pause + 1: terms(n),  # type: ignore[misc]
                30,
                what=f"the lease held again after pause {pause}",
            )
            held = time.monotonic()
            await wait_for(
                lambda t=held: dispatching_since(t),  # type: ignore[misc]
                30,
                what=f"dispatching after pause {pause}",
            )
        assert await scheduler.stop() == 0
    finally:
        scheduler.signal(signal.SIGCONT)  # never left stopped for the fixture's SIGTERM
        await bus.close(nc)


async def test_a_paused_scheduler_is_no_outage_of_what_it_watches(svc: Services) -> None:
    """Paused longer than a host's silence, a job's lateness and a request's give-up time,
    while the agent answered every request and sent its figures and the job pinged: the
    scheduler was not watching, nothing was late. Nothing is judged otherwise than ok for it
    (resumed, the term that had lost its lease judged the host silent, the job late and the
    requests sent before the pause unanswered, before it ended: what came during the pause
    was not read yet)."""
    svc.config.write_text(svc.config.read_text() + JOB + HOSTS)
    job = next(t for t in configuration.parse(str(svc.config)).tasks.values() if t.url == JOB_URL)
    svc.projector()
    agent = ["agent", "--nats-url", svc.nats_url, "--name", "a1", "--host-interval", "1s"]
    svc._start("agent-a1", agent)
    scheduler = _short_lease_scheduler(svc)
    nc = await bus.connect(svc.nats_url, "test")
    pinging = asyncio.create_task(_ping_forever(nc, job))
    try:
        await wait_for(lambda: _judged_ok(svc), 60, what="tasks and host judged ok")
        scheduler.signal(signal.SIGSTOP)
        await asyncio.sleep(PAST_GIVE_UP)
        scheduler.signal(signal.SIGCONT)
        resumed = time.time()
        await wait_for(lambda: _judged_after(svc, resumed), 60, what="judging after the pause")
        await wait_projected(svc.nats_url, svc.database_url)
        conn = await asyncpg.connect(svc.database_url, server_settings={"search_path": SCHEMA})
        try:
            bad = await conn.fetch(
                "SELECT task_id, severity, reason FROM severity_changes WHERE severity <> 'ok'"
            )
        finally:
            await conn.close()
        assert not bad, [dict(r) for r in bad[:3]]
        assert await scheduler.stop() == 0
    finally:
        scheduler.signal(signal.SIGCONT)
        pinging.cancel()
        await asyncio.wait({pinging})
        await bus.close(nc)
