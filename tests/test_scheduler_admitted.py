"""The scheduler checks its requests against the event contract before publishing them, in
full until a request of the same task list was admitted unsealed; after that only what
changes from one run to the next (the due time) is held to the contract's bounds."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from configuration import config as configuration
from events import codec, lenient, streams, subjects
from events.fields import LATEST
from events.types import CheckRequested, TaskDef, TaskJudged
from runtime import bus
from runtime.pubacks import Publisher
from security.sealing import Sealer, new_location_key
from services.scheduler.service import Scheduler
from services.scheduler.state import SchedulerOptions
from tests.helpers import site_config, write_config


async def _last(js: Any, subject: str) -> Any:
    msg = await js.get_last_msg(streams.EVENTS, subject)
    return codec.decode(msg.data, msg.subject)


async def test_requests_are_checked_in_full_until_their_task_list_was_admitted(
    nats_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = site_config("http://127.0.0.1:9", {"a?token=abcdefgh": ["status-is: 200"]})
    path = write_config(tmp_path / "c.yaml", site)
    cfg = configuration.parse(path)
    groups: dict[str, list[TaskDef]] = defaultdict(list)
    for task in cfg.tasks.values():
        groups[task.group].append(task)
    (gid,) = groups
    # Without a key for the location, the URL's secret is left out: masked, nothing sealed.
    checked: list[CheckRequested] = []
    admitted = lenient.encode_admitted

    def counted(event: Any, subject: str) -> bytes:
        checked.append(event)
        return admitted(event, subject)

    monkeypatch.setattr(lenient, "encode_admitted", counted)
    nc = await bus.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        publisher = await Publisher(nc).start()
        scheduler = Scheduler(SchedulerOptions(nats_server.url, str(path)))
        scheduler.config = cfg
        scheduler.groups = dict(groups)
        now = time.time()

        async def run(due: float) -> CheckRequested:
            await scheduler._request(js, publisher, [(gid, due)])
            event = await _last(js, subjects.requested("default", gid))
            assert isinstance(event, CheckRequested)
            return event

        first = await run(now)
        assert len(checked) == 1
        again = await run(now + 60)
        assert len(checked) == 1, "the same list, unsealed: not decoded again"
        assert again.request != first.request and again.due == now + 60

        # A new configuration makes new lists: checked again.
        scheduler.groups = {gid: list(groups[gid])}
        await run(now + 120)
        assert len(checked) == 2

        # Sealed (the location has a key now, the URL a secret): checked every time.
        scheduler.sealer = Sealer({"default": new_location_key()[1]})
        for due in (now + 180, now + 240):
            assert (await run(due)).sealed is not None
        assert len(checked) == 4

        # A due time the contract refuses (after 2100) is refused, the list admitted or not.
        scheduler.sealer = Sealer({})
        await run(now + 300)
        checked.clear()
        await run(now + 360)
        assert checked == []
        await scheduler._request(js, publisher, [(gid, LATEST + 1)])
        assert len(checked) == 1
        for task in list(scheduler._background):
            await task
        verdict = await _last(js, subjects.judged(gid))
        assert isinstance(verdict, TaskJudged)
        assert "cannot be sent to the agents" in verdict.judgements[0].reason
    finally:
        await nc.close()
