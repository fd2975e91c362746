"""The settings of a configuration travel in ``config.applied`` with every secret masked, and
come back whole in a service that has the secret values (its own file, its environment)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest

from configuration import config as configuration
from configuration import published
from configuration.inforce import InForce, apply_config, configuration_in_force, in_force
from events import streams
from services import cli
from services.notifier.service import Notifier, NotifierOptions
from tests.helpers import site_config, wait_for
from tests.security_support import connect, start_secured

SECRETS = [
    "gotifyTok1",
    "mailPw2",
    "hookSecret3",
    "apprisePw4",
    "siteCred5",
    "ldapPw6",
    "envTok7",
    "queryTok8",
]

CONFIG = f"""
general:
  frequency: 1m
  cookie_secret: cookieSecret0123456789abcdef0123
  ldap: {{uri: "ldap://127.0.0.1:1", user_tree: "ou=users", user_attr: uid, bind_dn: "cn=x",
         bind_pwd: {SECRETS[5]}}}
  mail:
    mailfrom: tocsin@example.org
    host: smtp.example.org
    auth: {{login: tocsin, password: {SECRETS[1]}}}
    addresses: [ops@example.org]
  gotify:
    - url: https://gotify.example.org/?token={SECRETS[7]}
      tokens: [{SECRETS[0]}, "${{GOTIFY_TOKEN}}"]
  apprise:
    ops: ["mailto://u:{SECRETS[3]}@example.org"]
  webhooks:
    ops: {{url: "https://hooks.example.org/t", secret: {SECRETS[2]}}}
  alerts:
    critical: [mail, gotify, "apprise:ops", "webhook:ops"]
  maintenance:
    - {{start: "2026-06-01T02:00:00+00:00", duration: 1h, reason: upgrade}}
ssl:
  thresholds: [{{"1d": critical}}, {{"5d": warning}}]
recurring_tasks:
  time_without_agent: 10m
hosts:
  disk: {{warning: 70, critical: 90}}
  machines:
    - agent: db1
      memory: {{critical: 99, for: 5m}}
websites:
  - domain: https://tocsin:{SECRETS[4]}@example.org
    add_alerts_recipients: {{critical: [local]}}
    paths:
      - path: /
        checks: [status-is: 200]
status_pages:
  - slug: public
    title: Example
    groups:
      - name: Site
        components:
          - name: Home
            website: https://tocsin:{SECRETS[4]}@example.org
"""


def _cfg(tmp_path: Path, text: str, env: dict[str, str]) -> configuration.Config:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return configuration.parse(str(path), env)


def test_settings_in_the_log_show_no_secret_and_come_back_whole(tmp_path: Path) -> None:
    env = {"GOTIFY_TOKEN": SECRETS[6]}
    cfg = _cfg(tmp_path, CONFIG, env)
    logged = published.public(cfg)
    text = msgspec.json.encode(logged).decode()
    assert not [s for s in [*SECRETS, "cookieSecret"] if s in text], text
    assert "ops@example.org" in text  # an e-mail address is not a URL's credentials
    back, left = published.config(cfg.tasks, logged, cfg, cfg.digest, env={})
    assert left == []
    for name in published.FIELDS:
        assert getattr(back, name) == getattr(cfg, name), name


def test_a_service_puts_back_what_it_has_and_reports_the_rest(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, CONFIG, {"GOTIFY_TOKEN": SECRETS[6]})
    logged = published.public(cfg)
    (tmp_path / "other").mkdir()
    own = _cfg(tmp_path / "other", "general: {frequency: 1m}\nwebsites: []\n", {})
    # A service with another file and only the environment's token.
    back, left = published.config(cfg.tasks, logged, own, env={"GOTIFY_TOKEN": SECRETS[6]})
    assert back.general["gotify"][0]["tokens"][1] == SECRETS[6]
    assert back.general["gotify"][0]["tokens"][0].startswith("••••")
    assert back.general["alerts"] == cfg.general["alerts"]  # no secret: as applied
    assert back.hosts == cfg.hosts and back.ssl_thresholds == cfg.ssl_thresholds
    assert len(left) == 9 and not [s for s in SECRETS if s in str(left)]


def test_config_show_prints_the_settings_in_force_masked(
    nats_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("GOTIFY_TOKEN", SECRETS[6])
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    url = ["--nats-url", nats_server.url]
    assert cli.main(["config", "apply", str(path), *url]) == 0
    path.write_text(CONFIG.replace("time_without_agent: 10m", "time_without_agent: 20m"))
    assert cli.main(["config", "apply", str(path), *url]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("0 removed; settings changed")
    assert cli.main(["config", "history", *url]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(": +0 ~0 -0, settings changed")
    assert cli.main(["config", "show", *url]) == 0
    out = capsys.readouterr().out
    assert '"time_without_agent": 1200.0' in out and "https://gotify.example.org" in out
    assert "••••" in out and not [s for s in SECRETS if s in out], out


async def test_applying_back_and_forth_is_never_dropped_as_a_duplicate(
    nats_server: Any, tmp_path: Path
) -> None:
    """A, B, A, B within the duplicate window: four applies, B in force (the fourth once
    had the message id of the second); and a change of settings alone in an included file
    (the main file's hash unchanged) lands each time."""
    path = tmp_path / "c.yaml"
    sites = tmp_path / "general.yaml"
    body = site_config("http://127.0.0.1:9", {"p": ["status-is: 200"]})
    path.write_text("general: !include general.yaml\n" + body[body.index("websites:") :])
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, [])
    try:
        for quorum in (1, 2, 1, 2):
            sites.write_text(f"frequency: 1m\nipv6: false\nquorum: {quorum}\n")
            cfg = configuration.parse(str(path))
            assert await apply_config(js, cfg, "test") is not None
            assert (await in_force(js)).settings == published.public(cfg)
    finally:
        await nc.close()


def test_settings_that_do_not_read_stop_no_service(tmp_path: Path, monkeypatch: Any) -> None:
    """Whatever an apply carried (only an admin can publish one), the scheduler keeps its
    file's settings and the notifier its last ones, and neither raises."""
    own = _cfg(tmp_path, CONFIG, {"GOTIFY_TOKEN": SECRETS[6]})
    for bad in ({"hosts": 5}, {"ssl_thresholds": [["x"]]}, {"general": "nonsense"}):
        now = InForce(tasks=own.tasks, settings=bad, last_seq=1)
        cfg, masked = configuration_in_force(now, own)
        assert (cfg.hosts, cfg.general, masked) == (own.hosts, own.general, [])
    monkeypatch.setenv("GOTIFY_TOKEN", SECRETS[6])
    path = tmp_path / "c.yaml"
    notifier = Notifier(NotifierOptions("nats://127.0.0.1:9", "postgresql://x", str(path)))
    before = notifier.settings
    unsendable = published.public(own)
    unsendable["general"]["alerts"] = 5  # reads as a Config; no notifier setting comes of it
    notifier.now = InForce(tasks={}, settings=unsendable, last_seq=1)
    with pytest.raises(ValueError):  # its follower logs this and keeps what it had
        notifier._derive()
    assert notifier.settings is before


async def test_the_notifier_follows_an_apply_with_its_own_permissions(
    tmp_path: Path, database_url: str, monkeypatch: Any
) -> None:
    """With authorization on, the notifier (its own credentials) sees an apply made after
    it started: it may listen to ``config.applied``."""
    sb = start_secured(tmp_path, {"a1": "default"})
    admin = await connect(sb.url, sb.security("admin"))
    js = admin.jetstream()
    await streams.ensure(js, [])
    body = site_config("http://127.0.0.1:9", {"p": ["status-is: 200"]})
    first = tmp_path / "first.yaml"
    first.write_text(body + "recurring_tasks:\n  time_without_agent: 10m\n")
    later = tmp_path / "later.yaml"
    later.write_text(body + "recurring_tasks:\n  time_without_agent: 20m\n")
    monkeypatch.setenv("TOCSIN_NATS_CREDS", str(sb.store.creds_path("notifier")))
    notifier = Notifier(NotifierOptions(sb.url, database_url, str(first)))
    running = asyncio.create_task(notifier.run())
    try:
        await wait_for(lambda: _ready(notifier), 30, what="the notifier following the log")
        await apply_config(js, configuration.parse(str(later)), "admin")

        async def followed() -> bool:
            return notifier.settings.time_without_agent == 1200.0

        await wait_for(followed, 30, what="the applied setting in the notifier")
    finally:
        notifier.stop()
        await asyncio.gather(running, return_exceptions=True)
        await admin.close()
        sb.server.stop()


async def _ready(notifier: Notifier) -> bool:
    return notifier.now is not None


def _many_sites(n: int) -> str:
    """``n`` websites whose maintenance reasons make the settings large."""
    lines = ["general:", "  frequency: 1m", "  ipv6: false", "websites:"]
    for i in range(n):
        lines += [
            f"  - domain: http://127.0.{i // 200}.{i % 200 + 1}:9",
            "    maintenance:",
            f"      - {{start: '2026-06-01T02:00:00+00:00', duration: 1h, reason: {'x' * 2000}}}",
            "    paths:",
            "      - {path: /, checks: [status-is: 200]}",
        ]
    return "\n".join(lines) + "\n"


def test_large_settings_get_a_part_of_their_own_and_too_large_is_a_clear_error(
    nats_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_many_sites(115))  # ~240 kB of settings: too many beside 115 tasks
    url = ["--nats-url", nats_server.url]
    assert cli.main(["config", "apply", str(path), *url]) == 0
    assert cli.main(["config", "history", *url]) == 0
    history = capsys.readouterr().out.splitlines()[1:]
    assert [line.rsplit(": ", 1)[1] for line in history] == ["+115 ~0 -0", "+0 ~0 -0"]
    assert "part 2/2" in history[1]
    now = asyncio.run(_in_force(nats_server.url))
    assert now.settings == published.public(configuration.parse(str(path)))
    assert len(now.tasks) == 115

    path.write_text(_many_sites(600))  # settings more than one event may hold
    assert cli.main(["config", "apply", str(path), *url]) == 2
    err = capsys.readouterr().err
    assert "not applied: the settings take" in err and "Traceback" not in err
    assert len(asyncio.run(_in_force(nats_server.url)).tasks) == 115  # nothing landed


async def _in_force(url: str) -> InForce:
    nc = await nats.connect(url)
    try:
        return await in_force(nc.jetstream())
    finally:
        await nc.close()


def test_a_large_apply_is_split_in_parts_the_log_can_read(
    nats_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1500 tasks: every part within what a reader of the log accepts, all in force."""
    path = tmp_path / "c.yaml"
    checks = ["status-is: 200", "body-contains: ok"]
    paths = {f"some/longer/path/{i}": checks for i in range(750)}
    path.write_text(site_config("https://monitoring-target.example.org", paths))
    url = ["--nats-url", nats_server.url]
    assert cli.main(["config", "apply", str(path), *url]) == 0
    assert cli.main(["config", "history", *url]) == 0
    assert "not a configuration" not in capsys.readouterr().out
    assert len(asyncio.run(_in_force(nats_server.url)).tasks) == 1500
