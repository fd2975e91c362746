"""Services running on settings from the log, shown a hostile apply: a ``config.applied``
published with the admin's credentials whose settings no file could give. Each keeps its last
good settings and says what it refused: the projector's pruning leaves the results stored, and
keeps pruning by its age; the scheduler keeps judging a task checked from two locations
(``general.degraded_location`` not a mapping made every completion a dead letter)."""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from configuration import config as configuration
from configuration import published
from configuration.inforce import apply_config
from events import codec, streams, subjects
from events.types import ConfigApplied, TaskJudged
from runtime import bus
from services.projector.service import Projector, ProjectorOptions
from tests.helpers import DemoTarget, Stack, fetch, site_config, wait_for
from tests.security_support import connect, start_secured
from tests.web_fixtures import Seeder, task_def

DAY = 86400.0


def _hostile(cfg: configuration.Config, section: str, key: str, value: Any) -> bytes:
    """``cfg``'s apply with one setting changed, as a publisher may write it (not checked)."""
    settings = copy.deepcopy(published.public(cfg))
    settings[section][key] = value
    event = ConfigApplied(
        at=time.time(), revision="hostile", source="x.yaml", applied_by="x", settings=settings
    )
    return codec.encode(event)


def _refusals(caplog: pytest.LogCaptureFixture, seq: int, key: str) -> list[str]:
    """The errors logged of the refused apply at ``seq`` (its subject) that name ``key``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR
        and "refused" in r.getMessage()
        and getattr(r, "fields", {}).get("subject") == subjects.CONFIG_APPLIED
        and getattr(r, "fields", {}).get("seq") == seq
        and f"settings: {key}: " in getattr(r, "fields", {}).get("reason", "")
    ]


@pytest.mark.parametrize(
    "age", [-DAY, "1d", 1e300], ids=["negative age", "age as text", "huge age"]
)
async def test_the_pruning_keeps_its_age_and_the_results_stored(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    age: Any,
) -> None:
    caplog.set_level(logging.INFO)
    s = Seeder(database_url)
    now = time.time()
    t = task_def(1)
    s.config([t], at=now - 10 * DAY)
    for days in (9, 3, 2):
        s.result(t, "success", now - days * DAY)
    s.result(t, "success", now - 60)
    await s.flush()
    path = tmp_path / "c.yaml"
    path.write_text(
        site_config("http://127.0.0.1:9", {"p": ["status-is: 200"]})
        + "recurring_tasks:\n  max_results_age: 2.5d\n"
    )
    cfg = configuration.parse(path)
    sb = start_secured(tmp_path, {})
    admin = await connect(sb.url, sb.security("admin"))
    monkeypatch.setenv("TOCSIN_NATS_CREDS", str(sb.store.creds_path("projector")))
    stack = Stack(sb.url, database_url, path)
    try:
        js = admin.jetstream()
        await streams.ensure(js, [])
        await apply_config(js, cfg, "admin")
        seq = (
            await js.publish(
                subjects.CONFIG_APPLIED, _hostile(cfg, "recurring", "max_results_age", age)
            )
        ).seq
        # Its file's age, the same as the one applied before the hostile one.
        stack._start(Projector(ProjectorOptions(sb.url, database_url, max_results_age=2.5 * DAY)))

        async def pruned() -> list[list[float]]:
            rows = await fetch(database_url, "SELECT checked_at FROM results ORDER BY checked_at")
            ages = [round((now - r["checked_at"].timestamp()) / DAY, 1) for r in rows]
            return [ages] if len(ages) < 4 else []  # once any went: which ones are left

        left = await wait_for(pruned, 30, what="results older than 2.5 days pruned")
        assert left == [[2.0, 0.0]]
        assert _refusals(caplog, seq, "recurring.max_results_age"), caplog.text[-3000:]
        assert not stack.services[0][1].done()
    finally:
        await stack.close()
        await admin.close()
        sb.server.stop()


async def _judged_from_both(js: JetStreamContext, after: int) -> bool:
    """Whether a task was judged from both locations after the stream sequence ``after``."""
    try:
        await js.stream_info(streams.EVENTS)
    except NotFoundError:
        return False  # the scheduler has not made the log yet
    async for m in bus.replay(js, subjects.JUDGED_ALL):
        if m.metadata.sequence.stream <= after:
            continue
        ev = codec.decode(m.data, m.subject)
        if isinstance(ev, TaskJudged) and any(len(j.locations) == 2 for j in ev.judgements):
            return True
    return False


async def _not_judged(js: JetStreamContext) -> list[str]:
    out = []
    async for m in bus.replay(js, subjects.DEADLETTER_ALL):
        if b"could not judge" in m.data:
            out.append(m.data.decode()[:300])
    return out


async def test_judging_from_two_locations_goes_on(
    nats_server: Any, demo_target: DemoTarget, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = tmp_path / "c.yaml"
    path.write_text(
        site_config(
            demo_target.url,
            {"a": ["status-is: 200"]},
            locations="[eu, us]",
            degraded_location="{min_tasks: 3, ratio: 0.5}",
        )
    )
    cfg = configuration.parse(path)
    stack = Stack(nats_server.url, None, path)
    scheduler = stack.scheduler()
    stack.agent("eu-1", location="eu", host=None)
    stack.agent("us-1", location="us", host=None)
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await wait_for(lambda: _judged_from_both(js, 0), 40, what="a task judged from eu and us")
        hostile = _hostile(cfg, "general", "degraded_location", "everywhere")
        seq = (await js.publish(subjects.CONFIG_APPLIED, hostile)).seq

        async def read() -> bool:
            return scheduler.applied_seq >= seq

        await wait_for(read, 30, what="the hostile apply read")
        mark = (await js.stream_info(streams.EVENTS)).state.last_seq
        await wait_for(
            lambda: _judged_from_both(js, mark), 40, what="judged from eu and us after it"
        )
        assert await _not_judged(js) == []
        assert _refusals(caplog, seq, "general.degraded_location"), caplog.text[-3000:]
    finally:
        await nc.close()
        await stack.close()
