"""Applying configurations against a real NATS: `tocsin config apply|history`, and a running
scheduler following a changed file (what SIGHUP triggers) without a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
from nats.js.errors import NotFoundError

from configuration import config
from events import codec, subjects
from events.types import ConfigApplied, TaskJudged
from runtime import bus
from services import cli
from tests.helpers import Stack, wait_for, write_config

V1 = """\
general: {{frequency: 1s, ipv6: false, timeout: 3s}}
websites:
  - domain: {url}
    paths:
      - path: /healthy
        checks: [status-is: 200]
"""
V2 = (
    V1
    + """\
      - path: /broken
        request_data:
          headers: {{Authorization: Bearer s3cret}}
        checks: [status-is: 200]
"""
)


async def _log(nats_url: str, subject: str) -> list:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        return [codec.decode(m.data, m.subject) async for m in bus.replay(js, subject)]
    except NotFoundError:  # the scheduler has not created the stream yet
        return []
    finally:
        await nc.close()


def test_config_apply_and_history(nats_server, tmp_path: Path, capsys):
    path = write_config(tmp_path / "c.yaml", V1.format(url="http://127.0.0.1:9"))
    url = ["--nats-url", nats_server.url]
    assert cli.main(["config", "apply", str(path), *url]) == 0
    assert cli.main(["config", "apply", str(path), *url]) == 0
    write_config(path, V2.format(url="http://127.0.0.1:9"))
    assert cli.main(["config", "apply", str(path), *url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(": 1 added, 0 changed, 0 removed")
    assert out[1] == "no change: this configuration is already in force"
    assert out[2].endswith(": 1 added, 0 changed, 0 removed")
    assert cli.main(["config", "history", *url]) == 0
    history = capsys.readouterr().out.splitlines()
    assert len(history) == 2
    assert [line.rsplit(": ", 1)[1] for line in history] == ["+1 ~0 -0", "+1 ~0 -0"]
    assert f"from {path}" in history[1]
    events = asyncio.run(_log(nats_server.url, subjects.CONFIG_APPLIED))
    added = events[1].added[0]
    (value,) = added.request_data.headers.values()
    assert list(added.request_data.headers) == ["Authorization"]
    assert value.startswith("••••") and len(value) == 12  # masked, with a fingerprint


async def test_running_scheduler_follows_a_changed_configuration(
    nats_server, demo_target, tmp_path: Path
):
    path = write_config(tmp_path / "c.yaml", V1.format(url=demo_target.url))
    stack = Stack(nats_server.url, None, path)
    scheduler = stack.scheduler()
    stack.agent()
    try:

        async def judged() -> dict[str, str]:
            out: dict[str, str] = {}
            for ev in await _log(nats_server.url, subjects.JUDGED_ALL):
                assert isinstance(ev, TaskJudged)
                out.update({j.task: j.severity for j in ev.judgements})
            return out

        (healthy,) = config.parse(path).tasks
        await wait_for(lambda: _has(judged, healthy), 20, what="the first task judged")
        write_config(path, V2.format(url=demo_target.url))
        (broken,) = config.parse(path).tasks.keys() - {healthy}
        scheduler.request_reload()  # what SIGHUP calls
        seen = await wait_for(lambda: _has(judged, broken), 20, what="the added task judged")
        assert seen[broken] == "critical" and seen[healthy] == "ok"
        history = [
            e
            for e in await _log(nats_server.url, subjects.CONFIG_APPLIED)
            if isinstance(e, ConfigApplied)
        ]
        assert [[t.id for t in e.added] for e in history] == [[healthy], [broken]]
    finally:
        await stack.close()


async def _has(judged, task: str) -> dict[str, str] | None:
    seen = await judged()
    return seen if task in seen else None
