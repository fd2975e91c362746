"""What the configuration reader admits, the event contract admits: a duration or a number
beyond the bounds of ``config.applied`` is refused at its place by ``config check``, and
``config apply`` never publishes an event the contract (and so every consumer) refuses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec
import nats
import pytest
from nats.js.errors import NotFoundError

from configuration import config as configuration
from configuration import inforce
from events import codec, streams, subjects
from events.types import ConfigApplied, TaskDef
from runtime import bus
from services.scheduler.hosts import HostJudging
from tests.test_config_cli import _tocsin

SITE = """\
general:
  frequency: 1m
  {general}
websites:
  - domain: https://example.org
    {website}
    paths:
      - path: /
        checks: [status-is: 200]
"""

#: (id, the line under ``general``, the line under the website, the problem or None).
CASES = [
    ("frequency-366d", "", "frequency: 366d", None),
    ("frequency-367d", "", "frequency: 367d", "6:16: websites[0].frequency: at most 366 days"),
    ("frequency-2y", "", "frequency: 2y", "6:16: websites[0].frequency: at most 366 days"),
    ("frequency-huge", "", "frequency: 99999999999y", "6:16: websites[0].frequency: at most"),
    (
        "frequency-digits",
        "",
        "frequency: " + "9" * 400 + "s",
        "6:16: websites[0].frequency: a duration",
    ),
    ("frequency-minutes", "", "frequency: 527041", "6:16: websites[0].frequency: at most"),
    (
        "frequency-inf",
        "",
        "frequency: .inf",
        "6:16: websites[0].frequency: a duration must be finite",
    ),
    (
        "frequency-nan",
        "",
        "frequency: .nan",
        "6:16: websites[0].frequency: a duration must be finite",
    ),
    ("general-frequency", "recheck_delay: 400d", "", "3:18: general.recheck_delay: at most"),
    ("timeout-366d", "timeout: 366d", "", None),
    ("timeout-400d", "timeout: 400d", "", "3:12: general.timeout: at most 366 days"),
    ("website-timeout", "", "timeout: 1y 1d", "6:14: websites[0].timeout: at most 366 days"),
    ("retries-at-bound", "", "retry_before_notification: 1000000", None),
    (
        "retries-beyond",
        "",
        "retry_before_notification: 1000001",
        "6:32: websites[0].retry_before_notification: expected a whole number from 0 to 1000000",
    ),
]


@pytest.mark.parametrize(
    ("general", "website", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_reader_admits_what_the_contract_admits(
    tmp_path: Path, general: str, website: str, problem: str | None
):
    path = tmp_path / "c.yaml"
    path.write_text(SITE.format(general=general, website=website))
    if problem is not None:
        with pytest.raises(configuration.ConfigError) as refused:
            configuration.parse(path)
        assert str(refused.value.problems[0]).startswith(f"{path}:{problem}")
        return
    cfg = configuration.parse(path)
    event = ConfigApplied(
        at=1.7e9, revision=cfg.digest, source=str(path), applied_by="t", added=[*cfg.tasks.values()]
    )
    assert codec.decode(codec.encode(event), subjects.CONFIG_APPLIED) == event


def test_check_of_a_huge_duration_exits_2_without_a_traceback(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(SITE.format(general="", website="frequency: 99999999999y"))
    done = _tocsin("config", "check", str(path))
    assert "Traceback" not in done.stderr
    assert done.returncode == 2
    assert done.stderr.startswith(f"{path}:6:16: websites[0].frequency: at most 366 days")


def test_check_shows_a_tiny_frequency_without_reading_its_printed_form_again(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(SITE.format(general="", website="frequency: 0.00001s"))
    done = _tocsin("config", "check", str(path))
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert "  every 1e-05s: 2 tasks" in done.stdout.splitlines()


async def _applied(nats_url: str) -> list[bytes]:
    nc = await nats.connect(nats_url)
    try:
        return [m.data async for m in bus.replay(nc.jetstream(), subjects.CONFIG_APPLIED)]
    except NotFoundError:
        return []
    finally:
        await nc.close()


async def test_apply_publishes_nothing_the_contract_refuses(nats_server, tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(SITE.format(general="", website=""))
    cfg = configuration.parse(path)
    # What no file can say any more: a task beyond the contract's bounds.
    beyond = {k: msgspec.structs.replace(t, timeout=1e12) for k, t in cfg.tasks.items()}
    nc = await bus.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await streams.ensure(js, cfg.locations)
        with pytest.raises(inforce.Refused, match="timeout"):
            await inforce.apply_config(js, dataclasses.replace(cfg, tasks=beyond), "t")
        assert await _applied(nats_server.url) == []
        await inforce.apply_config(js, cfg, "t")  # the valid one still lands
        (data,) = await _applied(nats_server.url)
        assert codec.decode(data, subjects.CONFIG_APPLIED)
    finally:
        await bus.close(nc)


async def test_host_tasks_beyond_the_contract_are_not_published(nats_server):
    task = TaskDef(
        id="t1",
        group="g1",
        domain="host://a1",
        url="host://a1/load",
        method="HOST",
        ip_version=4,
        check="host-load",
        expected={"warning": 1},
        frequency=1e12,
    )
    nc = await bus.connect(nats_server.url, "test")
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"])
        judging = HostJudging(lambda: None)
        await judging._define(js, "a1", {"t1": task})
        await judging._define(js, "a1", {"t1": msgspec.structs.replace(task, frequency=60.0)})
        found = [m.data async for m in bus.replay(js, subjects.host_tasks("a1"))]
        (data,) = found  # only the one within the bounds
        assert codec.decode(data, subjects.host_tasks("a1"))
    finally:
        await bus.close(nc)
