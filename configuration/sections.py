"""``general`` besides the task settings: validated in shape, kept as data (``service``,
``ssl`` and ``recurring_tasks`` are in configuration/serverkeys.py).

``general`` also feeds the notifier (alerts, mail, gotify, apprise, maintenance)
and the web (sessions, access): they read ``Config.general`` as plain data,
which is only handed out once every value here was checked.
"""

from __future__ import annotations

from typing import Any

from checks.base import kind_of
from configuration.maintenance import parse_windows
from configuration.reader import (
    Reader,
    anything,
    join,
    mail_address,
    one_of,
    plain,
    port,
    text,
    texts,
)
from configuration.yamlsource import Located
from events.values import (
    access,
    argos_int,
    boolean,
    bounded_count,
    bounded_duration,
    or_none,
    positive,
    root_path,
    session_duration,
    share,
    stored_whole,
)

SEVERITY_NAMES = ("ok", "warning", "critical", "unknown", "no_agent")
SETTINGS_KEYS = {
    "frequency",
    "recheck_delay",
    "retry_before_notification",
    "ipv4",
    "ipv6",
    "timeout",
    "locations",
}
GENERAL_KEYS = SETTINGS_KEYS | {
    "alerts",
    "mail",
    "gotify",
    "apprise",
    "db",
    "env",
    "cookie_secret",
    "session_duration",
    "remember_me_duration",
    "unauthenticated_access",
    "ldap",
    "root_path",
    # Tocsin's own
    "quorum",
    "reminder_interval",
    "maintenance",
    "webhooks",
    "channels",
    "degraded_location",
}
MAINTENANCE_KEYS = {"start", "duration", "days", "tz", "reason"}


def general(r: Reader, m: dict[str, Located]) -> tuple[dict[str, Any], _Channels]:
    """Check every key of ``general`` that is not a task setting; the plain values, and the
    channels alerts may name."""
    out: dict[str, Any] = {}
    simple = {
        "env": one_of("dev", "test", "production"),
        "root_path": root_path,
        "session_duration": session_duration,
        "remember_me_duration": or_none(bounded_duration),
        "unauthenticated_access": access,
        "quorum": positive,
        "reminder_interval": bounded_duration,
    }
    for key, fn in simple.items():
        if key in m:
            r.convert(m[key], join("general", key), fn)
    if "cookie_secret" in m:
        r.convert(m["cookie_secret"], "general.cookie_secret", text, secret=True)
    if "db" in m:
        r.fields(
            m["db"],
            "general.db",
            # Not used by Tocsin (its read models are in DATABASE_URL): as lax as Argos.
            {"url": text, "pool_size": _db_int, "max_overflow": _db_int},
            secret=("url",),
        )
    # Argos's optional sections: empty (null) is none.
    given = {k: v for k, v in m.items() if v.value is not None or v.unset}
    if "ldap" in given:
        r.fields(
            m["ldap"],
            "general.ldap",
            {
                **{k: text for k in ("uri", "user_tree", "user_attr")},
                **{k: or_none(_string) for k in ("bind_dn", "bind_pwd", "user_filter")},
            },
            required=("uri", "user_tree", "user_attr"),
            secret=("bind_pwd",),
        )
    mail = _mail(r, m["mail"]) if "mail" in given else None
    for i, item in enumerate(r.items(m["gotify"], "general.gotify") if "gotify" in given else []):
        r.fields(
            item,
            f"general.gotify[{i}]",
            {"url": _http_url, "tokens": texts},
            required=("url", "tokens"),
            secret=("tokens",),
        )
    apprise = (
        r.mapping(m["apprise"], "general.apprise", set(_keys(m.get("apprise"))))
        if "apprise" in given
        else {}
    )
    for group, urls in apprise.items():
        for i, url in enumerate(r.items(urls, f"general.apprise.{group}")):
            r.convert(url, f"general.apprise.{group}[{i}]", text, secret=True)
    webhooks = (
        r.mapping(m["webhooks"], "general.webhooks", set(_keys(m.get("webhooks"))))
        if "webhooks" in m
        else {}
    )
    for name, hook in webhooks.items():
        r.fields(
            hook,
            f"general.webhooks.{name}",
            {"url": _http_url, "secret": text},
            required=("url", "secret"),
            secret=("url", "secret"),
        )
    channels = _Channels("mail" in given, "gotify" in given, set(apprise), set(webhooks))
    if "channels" in m:
        _channel_tuning(r, m["channels"], channels)
    if "degraded_location" in m:
        r.fields(
            m["degraded_location"],
            "general.degraded_location",
            {"min_tasks": positive, "ratio": share},
        )
    if "alerts" in m:
        recipients(r, m["alerts"], "general.alerts", channels, allow_mail=False)
    if "maintenance" in m:
        maintenance(r, m["maintenance"], "general.maintenance")
    for key, node in m.items():
        out[key] = _plain(node)
    if mail is not None:
        out["mail"] = mail
    return out, channels


#: The kinds of channel alerts name (``apprise:<group>``, ``webhook:<name>``).
CHANNEL_KINDS = ("local", "mail", "gotify", "apprise", "webhook")


def unknown_channel(name: Any) -> bool:
    """A name of no channel kind (``slack``): Argos 0.10.3 accepts it and sends nothing there;
    Tocsin too, with a warning at its place (the notifier leaves it out)."""
    # An empty name stays refused: no name at all is a slip, not another tool's channel.
    return isinstance(name, str) and name != "" and name.partition(":")[0] not in CHANNEL_KINDS


def _channel_name(r: Reader, node: Located, path: str, channels: _Channels) -> None:
    if unknown_channel(node.value):
        r.warn(
            node.where,
            path,
            f"unknown channel {node.value!r}: nothing is sent there (Argos ignores it too); "
            "expected local, mail, gotify, apprise:<group> or webhook:<name>",
        )
    else:
        r.convert(node, path, channels.check)


class _Channels:
    """Which channels the configuration defines, so that alerts cannot name a missing one."""

    def __init__(
        self, mail: bool, gotify: bool, apprise: set[str], webhooks: set[str] | None = None
    ) -> None:
        self.mail, self.gotify, self.apprise = mail, gotify, apprise
        self.webhooks = webhooks or set()

    def check(self, name: Any) -> str:
        if name == "local":
            return name
        if name == "mail" or name == "gotify":
            if not getattr(self, name):
                raise ValueError(f"channel {name} needs a general.{name} section")
            return str(name)
        if isinstance(name, str) and name.startswith("apprise:"):
            group = name.split(":", 1)[1]
            if group not in self.apprise:
                known = ", ".join(sorted(self.apprise)) or "none defined"
                raise ValueError(f"unknown apprise group {group!r} (general.apprise: {known})")
            return name
        if isinstance(name, str) and name.startswith("webhook:"):
            hook = name.split(":", 1)[1]
            if hook not in self.webhooks:
                known = ", ".join(sorted(self.webhooks)) or "none defined"
                raise ValueError(f"unknown webhook {hook!r} (general.webhooks: {known})")
            return name
        raise ValueError(
            f"unknown channel {name!r}: expected local, mail, gotify, apprise:<group> "
            "or webhook:<name>"
        )


def _channel_tuning(r: Reader, node: Located, channels: _Channels) -> None:
    """``general.channels``: per-channel tuning, keyed by the channel's name as alerts write it."""
    for name, tuning in r.mapping(node, "general.channels", set(_keys(node))).items():
        path = join("general.channels", name)
        r.convert(Located(name, node.key_where[name]), path, channels.check)
        spec = r.fields(tuning, path, {"rate_limit": anything, "group_window": bounded_duration})
        if "rate_limit" in spec:
            r.fields(
                tuning.value["rate_limit"],
                join(path, "rate_limit"),
                {"count": positive, "per": bounded_duration},
                required=("count", "per"),
            )


def _http_url(v: Any) -> str:
    if not isinstance(v, str) or not v.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {kind_of(v)}")
    return v


def recipients(
    r: Reader, node: Located, path: str, channels: _Channels | None, allow_mail: bool = True
) -> None:
    """``{severity: [channel, {channel: NAME, after: N}]}``; a website may add ``mail: [..]``,
    or give Argos's plain list of channels (``["apprise:team"]``), used for every severity."""
    if allow_mail and isinstance(node.value, list):
        for i, item in enumerate(node.value):
            if channels is not None:
                _channel_name(r, item, join(path, i), channels)
        return
    allowed = set(SEVERITY_NAMES) | ({"mail"} if allow_mail else set())
    for key, value in r.mapping(node, path, allowed).items():
        kpath = join(path, key)
        if key == "mail":
            addresses(r, value, kpath)
            continue
        for i, item in enumerate(r.items(value, kpath)):
            ipath = join(kpath, i)
            name_node: Located | None = item
            name_path = ipath
            if isinstance(item.value, dict):
                r.fields(
                    item,
                    ipath,
                    {"channel": anything, "after": bounded_count},
                    required=("channel",),
                )
                name_node, name_path = item.value.get("channel"), join(ipath, "channel")
            if name_node is not None and channels is not None:
                _channel_name(r, name_node, name_path, channels)


def addresses(r: Reader, node: Located, path: str) -> None:
    """A list of mail addresses, each refused at its own place."""
    for i, item in enumerate(r.items(node, path)):
        r.convert(item, join(path, i), mail_address)


def maintenance(r: Reader, node: Located, path: str) -> None:
    """Maintenance windows: the keys here, their meaning (dates, days, time zones) by the same
    parser the notifier uses, so `tocsin config check` refuses what the notifier would."""

    for i, item in enumerate(r.items(node, path)):
        fields = r.fields(
            item,
            join(path, i),
            {
                "start": anything,
                "duration": bounded_duration,
                "days": anything,
                "tz": text,
                "reason": text,
            },
            required=("start", "duration"),
        )
        if "start" in fields and "duration" in fields:
            r.convert(item, join(path, i), lambda v: parse_windows([_plain_value(v)]))


#: Argos's ``Mail`` defaults: a file without them means these (its SMTP server on this host).
MAIL_DEFAULTS = {"host": "127.0.0.1", "port": 25, "ssl": False, "starttls": False}


def _mail(r: Reader, node: Located) -> dict[str, Any]:
    """``general.mail`` with Argos's defaults filled in, as the notifier sends with it."""
    spec = {
        "mailfrom": text,
        "host": text,
        "port": argos_int(port),
        # StrictBool in Argos's schema: true or false only.
        "ssl": boolean,
        "starttls": boolean,
        "auth": anything,
        "addresses": texts,
    }
    m = r.fields(node, "general.mail", spec, required=("mailfrom",))
    if "addresses" in m:
        addresses(r, node.value["addresses"], "general.mail.addresses")
    if m.get("auth") is not None:  # Argos: optional, empty is none
        r.fields(
            node.value["auth"],
            "general.mail.auth",
            {"login": text, "password": text},
            required=("login", "password"),
            secret=("password",),
        )
    return {**MAIL_DEFAULTS, **m}


_db_int = argos_int(stored_whole)


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {kind_of(v)}")
    return v


def _keys(node: Located | None) -> list[str]:
    return list(node.value) if node is not None and isinstance(node.value, dict) else []


def _plain_value(value: Any) -> Any:
    return _plain(Located(value, None)) if isinstance(value, dict | list) else value  # type: ignore[arg-type]


def _plain(node: Located) -> Any:
    return plain(node)
