"""Argos's ``POST /api/app/reschedule/all`` ("check every task that is not ok as soon as
possible") is Tocsin's check now, for each request group with a task not ok; as Argos
answers it, with Argos's words."""

from __future__ import annotations

import httpx

from tests.helpers import fetch, wait_for
from tests.test_checknow import requests_in_log, running


async def test_reschedule_all_checks_now_what_is_not_ok(
    nats_server, database_url, demo_target, tmp_path
) -> None:
    async with running(
        nats_server.url, database_url, demo_target, tmp_path, check_now_every=1.0
    ) as s:
        task = await s.task()  # never checked yet (an hour between runs): unknown for Argos
        read, write = await s.token("read"), await s.token("write")
        async with httpx.AsyncClient(base_url=s.web.url) as c:
            url = "/api/app/reschedule/all"
            assert (await c.post(url)).status_code == 401
            refused = await c.post(url, headers={"Authorization": f"Bearer {read}"})
            assert refused.status_code == 403
            done = await c.post(url, headers={"Authorization": f"Bearer {write}"})
        assert (done.status_code, done.json()) == (200, {"msg": "Non OK tasks reschuled"})

        async def judged() -> bool:
            rows = await fetch(database_url, "SELECT severity FROM tasks WHERE id = $1", task["id"])
            return rows[0]["severity"] == "critical"

        await wait_for(judged, what="the broken task checked at once")
        requests = await requests_in_log(nats_server.url)
        assert [r.requested_by for r in requests] == ["token:script-write"]
