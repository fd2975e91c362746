"""The configuration in force is the log's: ``tocsin config apply`` is run by the scheduler,
and restarting every service (the scheduler still pointed at its old file) reverts nothing."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx
import pytest

from configuration import config as configuration
from runtime.embedded import free_port
from services.notifier.channels import webhook
from tests.faults.harness import ROOT, Service, Services, config_body, count
from tests.helpers import DemoTarget, site_config, wait_for
from tests.notif_receivers import HttpReceiver

PATHS = ["p0", "p1"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


async def test_config_apply_is_run_and_survives_restarting_everything(
    nats_server, database_url: str, demo_target: DemoTarget, tmp_path: Path
):
    for p in [*PATHS, "added"]:
        demo_target.set(p, status=200, body="ok")
    old = tmp_path / "tocsin.yaml"
    old.write_text(config_body(demo_target.url, PATHS))
    new = tmp_path / "new.yaml"
    new.write_text(config_body(demo_target.url, [*PATHS, "added"]))
    added = {t.id for t in configuration.parse(str(new)).tasks.values() if "/added" in t.url}
    assert added
    (tmp_path / "logs").mkdir()
    svc = Services(nats_server.url, database_url, old, tmp_path / "logs")
    try:
        procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]
        await wait_for(
            lambda: count(database_url, "SELECT count(*) FROM results"), 60, what="results"
        )
        done = _cli("config", "apply", str(new), "--nats-url", nats_server.url)
        assert done.returncode == 0, done.stderr
        assert "2 added" in done.stdout, done.stdout

        judged = "SELECT count(*) FROM tasks WHERE id = ANY($1::text[]) AND severity = 'ok'"
        await wait_for(
            lambda: _all(count(database_url, judged, list(added)), len(added)),
            30,
            what="the applied tasks judged",
        )

        # Restart every service; the scheduler still has the old file.
        for p in procs:
            await p.stop()
        restarted = time.time()
        procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]
        fresh = (
            "SELECT count(DISTINCT task_id) FROM results WHERE task_id = ANY($1::text[]) "
            "AND checked_at > to_timestamp($2)"
        )
        await wait_for(
            lambda: _all(count(database_url, fresh, list(added), restarted), len(added)),
            30,
            what="the applied tasks still checked after a restart",
        )
        removed = "SELECT count(*) FROM tasks WHERE removed_at IS NOT NULL"
        assert await count(database_url, removed) == 0
        shown = _cli("config", "show", "--nats-url", nats_server.url)
        assert shown.returncode == 0, shown.stderr
        assert all(tid in shown.stdout for tid in added), shown.stdout
        assert all(p.alive for p in procs)
    finally:
        await svc.close()


async def _all(n, want: int) -> bool:  # type: ignore[no-untyped-def]
    return await n == want


HOOK_SECRET = "hookSecretFromEnv9"


def _settings_config(url: str, hook: bool) -> str:
    """One website whose ``flip`` path the test turns bad; ``hook``: alerts go to a webhook
    whose URL and secret come from the environment (secrets are masked in the log: a service
    takes them from its environment or its file), and a status page shows the website."""
    body = site_config(url, {"flip": ["status-is: 200"]}, "1s", "3s")
    if not hook:
        return body.replace("general:\n", "general:\n  alerts:\n    critical: [local]\n", 1)
    general = (
        "general:\n  alerts:\n    critical: [webhook:ops]\n  webhooks:\n"
        "    ops: {url: '${HOOK_URL}', secret: '${HOOK_SECRET}'}\n"
    )
    page = (
        "status_pages:\n  - slug: applied\n    title: Applied page\n    groups:\n"
        f"      - name: Site\n        components:\n          - name: Flip\n"
        f"            website: {url}\n"
    )
    return body.replace("general:\n", general, 1) + page


async def test_applied_settings_are_followed_without_restart_and_survive_restarts(
    nats_server: Any,
    database_url: str,
    demo_target: DemoTarget,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The notifier sends through the channels an apply brought (its secret from the
    environment), the web shows the status page it brought, with no restart; a notifier and a
    web started afterwards with the old file still run them."""
    receiver = await HttpReceiver().start()
    # The services' environment (they inherit the test's), not the old file, has them.
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    monkeypatch.setenv("HOOK_URL", f"{receiver.url}/hook/ops")
    demo_target.set("flip", status=200, body="ok")
    old = tmp_path / "tocsin.yaml"
    old.write_text(_settings_config(demo_target.url, False))
    new = tmp_path / "new.yaml"
    new.write_text(_settings_config(demo_target.url, True))
    (tmp_path / "logs").mkdir()
    svc = Services(nats_server.url, database_url, old, tmp_path / "logs")
    port = free_port()
    try:
        svc.projector(), svc.scheduler(), svc.agent("a1")
        notifier, web = _notifier(svc), _web(svc, port)
        ok = "SELECT count(*) FROM tasks WHERE severity = 'ok'"
        await wait_for(lambda: count(database_url, ok), 60, what="the task judged ok")
        # Once the web answers at all: the old file and the log have no such page.
        assert await wait_for(lambda: _status(port, "applied"), 60, what="the web") == 404

        done = _cli("config", "apply", str(new), "--nats-url", nats_server.url)
        assert done.returncode == 0, done.stderr
        assert "settings changed" in done.stdout, done.stdout
        await wait_for(lambda: _is(_status(port, "applied"), 200), 30, what="the page served")
        revision = configuration.parse(str(new)).digest[:12]
        await wait_for(lambda: _logged(notifier, revision), 30, what="the notifier following")

        async def flip_and_hear(n: int) -> None:  # through the applied webhook
            demo_target.set("flip", status=500)
            await wait_for(
                lambda: _is(_calls(receiver), n), 60, what=f"webhook call {n} of the apply"
            )
            assert _signed(_alerts(receiver)[-1], HOOK_SECRET)
            demo_target.set("flip", status=200, body="ok")
            await wait_for(lambda: count(database_url, ok), 60, what="the task ok again")

        await flip_and_hear(1)
        # Every service restarted, the notifier and the web with the old file.
        for s in svc.started:
            await s.stop()
        svc.projector(), svc.scheduler(), svc.agent("a1")
        notifier, web = _notifier(svc), _web(svc, port)
        await wait_for(lambda: _is(_status(port, "applied"), 200), 60, what="the page again")
        await flip_and_hear(2)
        assert notifier.alive and web.alive
    finally:
        await svc.close()
        await receiver.stop()


def _notifier(svc: Services) -> Service:
    return svc._start(
        "notifier",
        [
            "notifier",
            "--nats-url",
            svc.nats_url,
            "--database-url",
            svc.database_url,
            "--config",
            str(svc.config),
        ],
        {"TOCSIN_LOG_LEVEL": "info"},  # it says which configuration it runs
    )


async def _logged(service: Service, revision: str) -> bool:
    return any(
        "configuration in force" in line and f"revision={revision!r}" in line
        for line in service.output().splitlines()
    )


def _web(svc: Services, port: int) -> Service:
    env = {"TOCSIN_CONFIG": str(svc.config), "NATS_URL": svc.nats_url}
    args = ["web", "--database-url", svc.database_url, "--port", str(port)]
    return svc._start("web", args, env)


async def _status(port: int, slug: str) -> int:
    try:
        async with httpx.AsyncClient(timeout=5) as c:
            return (await c.get(f"http://127.0.0.1:{port}/status/{slug}")).status_code
    except httpx.TransportError:
        return 0


async def _calls(receiver: HttpReceiver) -> int:
    """Alerts only: each recovery goes to the webhook too."""
    return len(_alerts(receiver))


def _alerts(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [c for c in receiver.on("/hook/ops") if c["json"]["kind"] == "alert"]


async def _is(got: Awaitable[int], want: int) -> bool:
    return await got == want


def _signed(call: dict[str, Any], secret: str) -> bool:
    stamp = call["headers"][webhook.TIMESTAMP]
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + call["raw"], hashlib.sha256)
    return hmac.compare_digest(call["headers"][webhook.SIGNATURE], "sha256=" + mac.hexdigest())
