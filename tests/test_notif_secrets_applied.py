"""A channel's secret values applied with ``tocsin config apply`` (the log holds them masked)
reach the notifier: it reads its own file again when an apply names secrets it lacks, and
until it has them it says which are missing or stale and keeps the channel's notifications
queued, never dropping one as "no longer configured" while the channel is configured. Real
NATS, PostgreSQL and HTTP receivers; the notifier as ``tocsin notifier`` runs it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from configuration import config as configuration
from configuration.inforce import apply_config
from events import codec, subjects
from events.types import Judgement, TaskJudged
from services.cli import main as tocsin
from tests.helpers import fetch, wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_service import Running
from tests.test_notif_webhook import _consumer_ready

HOOK = "hook-secret-value-1"
SITE = """general:
  frequency: 1m
  ipv6: false
  alerts:
    critical: [{channels}]
{hooks}websites:
  - domain: http://127.0.0.1:9
    paths:
      - path: /
        checks: [status-is: 200]
"""


def _body(hooks: dict[str, str]) -> str:
    """The file with ``hooks`` (name → receiver URL) as webhooks alerted on critical."""
    if not hooks:
        return SITE.format(channels="local", hooks="")
    lines = ["  webhooks:"] + [
        f"    {name}: {{url: '{url}', secret: {HOOK}}}" for name, url in hooks.items()
    ]
    names = ", ".join(["local", *(f"webhook:{n}" for n in hooks)])
    return SITE.format(channels=names, hooks="\n".join(lines) + "\n")


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[HttpReceiver, HttpReceiver]]:
    a, b = await HttpReceiver().start(), await HttpReceiver().start()
    yield a, b
    await a.stop()
    await b.stop()


def _followed(now: Any, seq: int) -> bool:
    """The notifier has read the configuration in force (none yet while it starts, on a slow
    machine) up to ``seq``."""
    return now is not None and now.last_seq >= seq


class Scene:
    """A log with a configuration applied, and a notifier following it."""

    def __init__(self, nats_url: str, database_url: str, own: Path) -> None:
        self.nats_url, self.database_url = nats_url, database_url
        self.notifier = Running(nats_url, database_url, own)
        self.nc: Any = None

    async def __aenter__(self) -> Scene:
        self.nc = await nats.connect(self.nats_url)
        self.notifier.start()
        await wait_for(lambda: _consumer_ready(self.js), what="the notifier's durable consumer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()
        await self.notifier.stop()

    @property
    def js(self) -> Any:
        return self.nc.jetstream()

    async def apply(self, path: Path) -> None:
        seq = (await apply_config(self.js, configuration.parse(str(path)), "test")) is not None
        assert seq
        applied = (await self.js.stream_info("EVENTS")).state.last_seq
        await wait_for(
            lambda: asyncio.sleep(0, _followed(self.notifier.notifier.now, applied)),
            what="the notifier following the apply",
        )

    async def fail(self, path: Path) -> None:
        (task,) = configuration.parse(str(path)).tasks
        j = Judgement(task=task, severity="critical", previous="ok", reason="down", failures=1)
        ev = TaskJudged(
            at=time.time(), group="g", completion=0, next_run=time.time() + 60, judgements=[j]
        )
        await self.js.publish(subjects.judged("g"), codec.encode(ev))

    async def rows(self, channel: str) -> list[Any]:
        return await fetch(
            self.database_url,
            "SELECT * FROM tocsin_notifier.outbox WHERE channel = $1 ORDER BY key",
            channel,
        )


async def _hooked(receiver: HttpReceiver, path: str) -> bool:
    return bool(receiver.on(path))


async def test_a_webhook_added_to_the_notifiers_own_file_and_applied_sends_at_once(
    nats_server, database_url, receivers, tmp_path: Path
):
    """``tocsin dev --config c.yaml``, then a webhook added to c.yaml and applied."""
    hook, _ = receivers
    path = write_config(tmp_path / "c.yaml", _body({}))
    async with Scene(nats_server.url, database_url, path) as scene:
        await scene.apply(path)
        write_config(path, _body({"new": f"{hook.url}/hook/new"}))
        await scene.apply(path)
        await scene.fail(path)
        await wait_for(lambda: _hooked(hook, "/hook/new"), what="the alert at the new webhook")
        (row,) = await scene.rows("webhook:new")
        assert row["last_error"] is None and row["sent_at"] is not None


async def test_secrets_the_notifier_lacks_keep_the_alert_queued_until_it_has_them(
    nats_server, database_url, receivers, tmp_path: Path, caplog: Any
):
    """A notifier started with another file: the alert waits, saying which secret it lacks;
    once its file has the value (SIGHUP), the alert goes out, not dropped."""
    hook, _ = receivers
    applied = write_config(tmp_path / "c.yaml", _body({"new": f"{hook.url}/hook/new"}))
    own = write_config(tmp_path / "own.yaml", _body({}))
    caplog.set_level("WARNING", logger="tocsin.notifier")
    async with Scene(nats_server.url, database_url, own) as scene:
        await scene.apply(applied)
        said = [r.getMessage() + repr(getattr(r, "fields", {})) for r in caplog.records]
        assert [x for x in said if "general.webhooks.new.url" in x and "missing" in x], said
        await scene.fail(applied)

        async def waiting() -> Any:
            rows = await scene.rows("webhook:new")
            return rows if rows and rows[0]["attempts"] >= 2 else None

        (row,) = await wait_for(waiting, what="the alert retried")
        assert row["given_up_at"] is None and "general.webhooks.new.url" in row["last_error"]
        assert HOOK not in row["last_error"]
        assert hook.calls == []
        write_config(own, _body({"new": f"{hook.url}/hook/new"}))
        scene.notifier.notifier.reload()  # type: ignore[union-attr]
        await wait_for(lambda: _hooked(hook, "/hook/new"), what="the alert, once resolved")
        (row,) = await scene.rows("webhook:new")
        assert row["given_up_at"] is None and row["sent_at"] is not None


async def test_a_webhook_moved_to_another_url_gets_what_was_pending_for_it(
    nats_server, database_url, receivers, tmp_path: Path
):
    old, new = receivers
    old.failures_left = 1_000_000
    path = write_config(tmp_path / "c.yaml", _body({"ops": f"{old.url}/hook/ops"}))
    async with Scene(nats_server.url, database_url, path) as scene:
        await scene.apply(path)
        await scene.fail(path)

        async def failed_once() -> Any:
            rows = await scene.rows("webhook:ops")
            return rows if rows and rows[0]["attempts"] >= 1 else None

        await wait_for(failed_once, what="a first failed attempt at the old URL")
        write_config(path, _body({"ops": f"{new.url}/hook/ops"}))
        await scene.apply(path)
        await wait_for(lambda: _hooked(new, "/hook/ops"), what="the pending alert at the new URL")
        (row,) = await scene.rows("webhook:ops")
        assert row["given_up_at"] is None and row["sent_at"] is not None


def test_config_apply_says_the_notifier_needs_new_channel_secrets(
    nats_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = write_config(tmp_path / "c.yaml", _body({}))
    assert tocsin(["config", "apply", str(path), "--nats-url", nats_server.url]) == 0
    assert "secret" not in capsys.readouterr().err
    write_config(path, _body({"new": "https://hooks.example.org/x"}))
    assert tocsin(["config", "apply", str(path), "--nats-url", nats_server.url]) == 0
    err = capsys.readouterr().err
    assert "general.webhooks.new.url" in err and "general.webhooks.new.secret" in err
    assert "notifier" in err and HOOK not in err
    # Applied again unchanged, or with the same secrets: nothing new to say.
    assert tocsin(["config", "apply", str(path), "--nats-url", nats_server.url]) == 0
    assert "secret" not in capsys.readouterr().err
