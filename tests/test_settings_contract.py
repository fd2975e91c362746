"""The settings a ``config.applied`` carries are read with the configuration file's rules
(``events/settings.py``): a publisher that may apply one (admin credentials, a bug, another
version) cannot hand a consumer a value no file could give. The event contract refuses the
event when it is decoded (``codec`` and ``lenient`` alike), saying which key and what is
wrong; the services reading the log keep the settings they had; ``config apply`` publishes
nothing the contract would refuse."""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import nats
import pytest

from configuration import config as configuration
from configuration import diff as configdiff
from configuration import published
from configuration.inforce import Refused, RefusedPart, apply_config, in_force, last_settings
from configuration.yamlsource import ConfigError
from events import codec, lenient, streams, subjects
from events.fields import MAX_SECONDS
from events.types import ConfigApplied
from runtime import bus

#: Every key a file may set that the log carries as settings, each with a value it admits.
RICH = Path(__file__).with_name("settings_rich.yaml")

#: id → (where in the settings, the hostile value, the key the refusal names).
HOSTILE: dict[str, tuple[tuple[str | int, ...], Any, str]] = {
    "negative max_results_age": (
        ("recurring", "max_results_age"),
        -86400.0,
        "recurring.max_results_age",
    ),
    "max_results_age as text": (
        ("recurring", "max_results_age"),
        "1d",
        "recurring.max_results_age",
    ),
    "max_results_age beyond a year": (
        ("recurring", "max_results_age"),
        MAX_SECONDS * 2,
        "recurring.max_results_age",
    ),
    "huge max_results_age": (("recurring", "max_results_age"), 1e300, "recurring.max_results_age"),
    "max_results_age of zero": (("recurring", "max_results_age"), 0, "recurring.max_results_age"),
    "max_lock_seconds not whole": (
        ("recurring", "max_lock_seconds"),
        120.5,
        "recurring.max_lock_seconds",
    ),
    "negative time_without_agent": (
        ("recurring", "time_without_agent"),
        -60.0,
        "recurring.time_without_agent",
    ),
    "recurring not a mapping": (("recurring",), ["max_results_age"], "recurring"),
    "unknown recurring key": (("recurring", "max_result_age"), 60.0, "recurring.max_result_age"),
    "degraded_location not a mapping": (
        ("general", "degraded_location"),
        "everywhere",
        "general.degraded_location",
    ),
    "degraded_location ratio above 1": (
        ("general", "degraded_location", "ratio"),
        5,
        "general.degraded_location.ratio",
    ),
    "degraded_location min_tasks as text": (
        ("general", "degraded_location", "min_tasks"),
        "3",
        "general.degraded_location.min_tasks",
    ),
    "general quorum as text": (("general", "quorum"), "2", "general.quorum"),
    "website quorum of 0": (
        ("websites", "example.org", "quorum"),
        0,
        "websites.example.org.quorum",
    ),
    "reminder_interval beyond a year": (
        ("general", "reminder_interval"),
        "999999999d",
        "general.reminder_interval",
    ),
    "negative session_duration": (("general", "session_duration"), -5, "general.session_duration"),
    "session_duration not a duration": (
        ("general", "session_duration"),
        "soon",
        "general.session_duration",
    ),
    "rate limit of no message": (
        ("general", "channels", "webhook:ops", "rate_limit", "count"),
        0,
        "general.channels.webhook:ops.rate_limit.count",
    ),
    "negative escalation": (
        ("general", "alerts", "critical", 1, "after"),
        -1,
        "general.alerts.critical[1].after",
    ),
    "alerts of an unknown severity": (("general", "alerts", "fatal"), ["local"], "general.alerts"),
    "maintenance of negative duration": (
        ("general", "maintenance", 0, "duration"),
        -60,
        "general.maintenance[0].duration",
    ),
    "website maintenance not a list": (
        ("websites", "example.org", "maintenance"),
        "sundays",
        "websites.example.org.maintenance",
    ),
    "ipv4 as text": (("general", "ipv4"), "sometimes", "general.ipv4"),
    "mail port beyond 65535": (("general", "mail", "port"), 70000, "general.mail.port"),
    "unauthenticated_access of another kind": (
        ("general", "unauthenticated_access"),
        "everyone",
        "general.unauthenticated_access",
    ),
    "unknown general key": (("general", "surprise"), 1, "general.surprise"),
    "general not a mapping": (("general",), "nonsense", "general"),
    "negative ssl threshold": (("ssl_thresholds", 0, 0), -86400.0, "ssl_thresholds[0][0]"),
    "host disk warning of 500%": (
        ("hosts", "defaults", "thresholds", "disk", "warning"),
        500.0,
        "hosts.defaults.thresholds.disk.warning",
    ),
    "machine retries as text": (
        ("hosts", "machines", "db1", "retry_before_notification"),
        "1",
        "hosts.machines.db1.retry_before_notification",
    ),
    "hosts not a mapping": (("hosts",), 5, "hosts"),
    "agent tokens not texts": (("agent_tokens",), [1], "agent_tokens[0]"),
    "status pages not a list": (("status_pages",), {"slug": "x"}, "status_pages"),
    "unknown section": (("surprise",), {}, "surprise"),
}


def _good() -> dict[str, Any]:
    return published.public(configuration.parse(RICH))


def _with(settings: dict[str, Any], where: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(settings)
    node: Any = out
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    return out


def _event(settings: dict[str, Any]) -> ConfigApplied:
    return ConfigApplied(
        at=time.time(), revision="hostile", source="x.yaml", applied_by="x", settings=settings
    )


def test_the_settings_of_a_file_setting_every_key_are_admitted() -> None:
    data = codec.encode(_event(_good()))
    for decode in (codec.decode, lenient.decode):
        assert decode(data, subjects.CONFIG_APPLIED).settings == _good()  # type: ignore[union-attr]


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_settings_are_refused_when_decoded_naming_the_key(
    case: tuple[tuple[str | int, ...], Any, str],
) -> None:
    where, value, key = case
    data = codec.encode(_event(_with(_good(), where, value)))
    for decode in (codec.decode, lenient.decode):
        with pytest.raises(codec.DecodeError) as refused:
            decode(data, subjects.CONFIG_APPLIED)
        assert f"settings: {key}: " in str(refused.value)


def test_a_short_secret_leaves_the_keys_of_the_settings_whole(tmp_path: Path) -> None:
    """A secret within a key's name (the password ``pw`` in ``bind_pwd``) masked it: the log
    would have refused the apply for a key no file has."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "general:\n  frequency: 1m\n  ldap: {uri: 'ldap://h', user_tree: 'ou=u', user_attr: uid,"
        " bind_dn: 'cn=r', bind_pwd: pw}\nwebsites: []\n"
    )
    cfg = configuration.parse(path)
    settings = published.public(cfg)
    assert sorted(settings["general"]["ldap"]) == [
        "bind_dn",
        "bind_pwd",
        "uri",
        "user_attr",
        "user_tree",
    ]
    assert "pw" not in settings["general"]["ldap"]["bind_pwd"]
    codec.decode(codec.encode(_event(settings)), subjects.CONFIG_APPLIED)
    assert published.config(cfg.tasks, settings, cfg)[0].general == cfg.general


#: id → (what ``general`` says in a file, how a hostile publisher's settings say the same):
#: the file's reader and the contract refuse it alike.
GENERAL = {
    "degraded_location a list": ("degraded_location: [3]", {"degraded_location": [3]}),
    "degraded_location ratio 0": (
        "degraded_location: {ratio: 0}",
        {"degraded_location": {"ratio": 0}},
    ),
    "quorum 0": ("quorum: 0", {"quorum": 0}),
    "negative reminder_interval": ("reminder_interval: -1", {"reminder_interval": -1}),
    "session_duration of 400 days": ("session_duration: 400d", {"session_duration": "400d"}),
    "group_window of no time": (
        "channels: {local: {group_window: 0s}}",
        {"channels": {"local": {"group_window": "0s"}}},
    ),
    "escalation after a million and one": (
        "alerts: {critical: [{channel: local, after: 1000001}]}",
        {"alerts": {"critical": [{"channel": "local", "after": 1000001}]}},
    ),
    "maintenance without a duration": (
        "maintenance: [{start: '02:00'}]",
        {"maintenance": [{"start": "02:00"}]},
    ),
    "root_path without a slash": ("root_path: tocsin", {"root_path": "tocsin"}),
}


@pytest.mark.parametrize("case", GENERAL.values(), ids=GENERAL.keys())
def test_what_the_file_refuses_the_contract_refuses(
    tmp_path: Path, case: tuple[str, dict[str, Any]]
) -> None:
    line, logged = case
    path = tmp_path / "c.yaml"
    path.write_text(f"general:\n  frequency: 1m\n  {line}\nwebsites: []\n")
    with pytest.raises(ConfigError):
        configuration.parse(path)
    settings = _good()
    settings["general"] = {"frequency": "1m", **logged}
    with pytest.raises(codec.DecodeError, match="settings: general"):
        codec.decode(codec.encode(_event(settings)), subjects.CONFIG_APPLIED)


#: The cases the consumers are shown on the log (the others differ only in the key).
ON_THE_LOG = [
    "negative max_results_age",
    "max_results_age as text",
    "huge max_results_age",
    "degraded_location not a mapping",
    "general quorum as text",
    "host disk warning of 500%",
]


@pytest.mark.parametrize("name", ON_THE_LOG)
async def test_services_keep_the_last_good_settings_and_say_what_was_refused(
    nats_server: Any, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """The scheduler and the notifier fold the log (``in_force``): the refused apply is
    logged with its subject, sequence and key, and the settings before it stay in force. The
    web and the projector read the last apply alone (``last_settings``): RefusedPart, which
    they log, keeping theirs."""
    caplog.set_level(logging.INFO)
    where, value, key = HOSTILE[name]
    good = _good()
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await streams.ensure(js, [])
        await apply_config(js, configuration.parse(RICH), "test")
        hostile = codec.encode(_event(_with(good, where, value)))
        seq = (await js.publish(subjects.CONFIG_APPLIED, hostile)).seq
        assert (await in_force(js)).settings == good
        with pytest.raises(RefusedPart, match=f"seq {seq}: .*settings: {key}: "):
            await last_settings(js)
    finally:
        await nc.close()
    said = [
        (r.getMessage(), getattr(r, "fields", {}))
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name == "tocsin.config"
    ]
    assert [
        (fields["subject"], fields["seq"])
        for msg, fields in said
        if "refused" in msg and f"settings: {key}: " in fields.get("reason", "")
    ] == [(subjects.CONFIG_APPLIED, seq)], said


async def test_config_apply_publishes_no_settings_the_contract_refuses(nats_server: Any) -> None:
    cfg = configuration.parse(RICH)
    hostile = dataclasses.replace(cfg, recurring={**cfg.recurring, "max_results_age": -1.0})
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await streams.ensure(js, [])
        with pytest.raises(Refused, match=r"settings: recurring\.max_results_age: "):
            await apply_config(js, hostile, "test")
        assert [m async for m in bus.replay(js, subjects.CONFIG_APPLIED)] == []
    finally:
        await nc.close()


@pytest.mark.parametrize("secret", ["s", "1", "pw", "8000"], ids=lambda s: f"secret-{s}")
def test_a_short_secret_masks_no_other_setting(tmp_path, secret: str) -> None:
    """A webhook secret ``s`` masked every ``s`` of the settings (``frequency: 1s``, the host
    ``localhost:8000``): the scheduler refused the whole configuration that `config check`
    called valid. A short secret is masked where it is a whole value only."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "general:\n  frequency: 1s\n  alerts: {critical: [webhook:ops]}\n"
        f"  webhooks:\n    ops: {{url: 'http://127.0.0.1:9/hook', secret: '{secret}'}}\n"
        "websites:\n  - domain: http://localhost:8000\n    depends_on: []\n"
        "    paths: [{path: /, checks: [status-is: 200]}]\n"
    )
    cfg = configuration.parse(path, env={})
    settings = published.public(cfg)
    assert settings["general"]["frequency"] == "1s"
    assert "localhost:8000" in settings["websites"]
    assert secret not in str(settings["general"]["webhooks"]["ops"]["secret"])
    added, changed, removed = configdiff.diff({}, cfg.tasks)
    event = ConfigApplied(
        at=time.time(),
        revision="r",
        source=str(path),
        applied_by="t",
        added=added,
        changed=changed,
        removed=removed,
        settings=settings,
    )
    codec.encode_admitted(event, subjects.CONFIG_APPLIED)
