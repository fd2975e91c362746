"""What the settings of a ``config.applied`` may hold: what the configuration file may say.

An apply carries its configuration's settings (``configuration/published.py``): ``general``,
the websites' alerting, maintenance and quorum as the file writes them (a duration as ``5m``
or a number of minutes), ``recurring_tasks`` and ``ssl.thresholds`` in seconds, ``hosts`` and
the status pages as read. Each value is checked here by the rule the file's reader applies to
it (the same converters, ``events/values.py``; the same bounds, ``events/fields.py``), so that
a value no file could give (a negative retention, a text where a count is, a list where a
mapping is) is no event of the log: ``codec.decode`` refuses the apply naming the key, and
every service reading the log keeps the settings it had instead of running on it.

Secrets travel masked (``••••`` and a fingerprint, ``values.MASKED``): where the file takes
text, a value from the environment included, a mask is admitted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from events import values
from events.fields import MAX_SECONDS, Token

#: An absent key (``None`` is a value, which the file refuses where the reader does).
_UNSET: Any = msgspec.UNSET


class Duration:
    """A duration as the file writes it: ``5m``, or a number of minutes."""


class Count:
    """A whole number from 0 (retries, an escalation's failures)."""


class ArgosCount:
    """A whole number from 0 as pydantic's ``int`` reads it (``"2"``, ``2.0``)."""


class ArgosWhole:
    """A whole number as pydantic's ``int`` reads it (``general.db``'s, which Tocsin does
    not use)."""


class ArgosBool:
    """A boolean as pydantic's ``bool`` reads it (``"yes"``, ``0``)."""


class RecheckDelay:
    """``general.recheck_delay``: a duration, or any empty value (no recheck delay)."""


class SessionDuration:
    """``general.session_duration``: whole minutes."""


class Positive:
    """A whole number from 1 (a quorum, a rate)."""


class Share:
    """Above 0, at most 1."""


class Access:
    """Argos's ``unauthenticated_access``."""


class RootPath:
    """``general.root_path``."""


#: Each type above: the file reader's converter that checks it, and whether the file may take
#: it from the environment (the log then holds it masked).
_CHECKS: dict[type, tuple[Callable[[Any], Any], bool]] = {
    Duration: (values.bounded_duration, True),
    Count: (values.bounded_count, False),
    ArgosCount: (values.argos_int(values.bounded_count), False),
    ArgosWhole: (values.argos_int(values.stored_whole), False),
    ArgosBool: (values.argos_bool, False),
    RecheckDelay: (values.delay_or_none, True),
    SessionDuration: (values.session_duration, True),
    Positive: (values.positive, False),
    Share: (values.share, False),
    Access: (values.access, True),
    RootPath: (values.root_path, True),
}


def _hook(kind: type, value: Any) -> Any:
    """msgspec's hook for the types above: checked by their converter."""
    if kind not in _CHECKS:
        raise NotImplementedError  # msgspec's dec_hook protocol: "not a type of mine"
    check, masked = _CHECKS[kind]
    if not (masked and isinstance(value, str) and values.MASKED.fullmatch(value)):
        check(value)
    return kind()


Text = Annotated[str, msgspec.Meta(min_length=1)]
#: Seconds, as the reader gives them: above 0, at most what the event log holds.
Seconds = Annotated[float, msgspec.Meta(gt=0, le=MAX_SECONDS)]
Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]
PerCore = Annotated[float, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Severity = Literal["ok", "warning", "critical", "unknown", "no_agent"]
Level = Literal["ok", "warning", "critical", "unknown"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class Recipient(_Strict):
    channel: Text
    after: Count = _UNSET


#: ``{severity: [channel, {channel, after}]}``; a website's (a host's) may add ``mail:
#: [addresses]``, or be Argos's plain list of channels.
Recipients = dict[Severity | Literal["mail"], list[Text | Recipient] | None] | list[Text]


class Window(_Strict):
    start: Any
    duration: Duration
    days: Any = _UNSET
    tz: Text = _UNSET
    reason: Text = _UNSET


class MailAuth(_Strict):
    login: Text
    password: Text


class Mail(_Strict):
    mailfrom: Text
    host: Text = _UNSET
    port: Port = _UNSET
    ssl: bool = _UNSET
    starttls: bool = _UNSET
    auth: MailAuth | None = _UNSET
    addresses: list[Text] = _UNSET


class Gotify(_Strict):
    url: Text
    tokens: list[Text]


class Webhook(_Strict):
    url: Text  # secret: masked in the log, an http(s) URL in the file
    secret: Text


class RateLimit(_Strict):
    count: Positive
    per: Duration


class Channel(_Strict):
    rate_limit: RateLimit = _UNSET
    group_window: Duration = _UNSET


class Degraded(_Strict):
    min_tasks: Positive = _UNSET
    ratio: Share = _UNSET


class Ldap(_Strict):
    uri: Text
    user_tree: Text = _UNSET
    # Argos passes these on as written: empty, or none.
    bind_dn: str | None = _UNSET
    bind_pwd: str | None = _UNSET
    user_attr: Text = _UNSET
    user_filter: str | None = _UNSET


class Db(_Strict):
    url: Text = _UNSET
    pool_size: ArgosWhole = _UNSET
    max_overflow: ArgosWhole = _UNSET


class General(_Strict):
    frequency: Duration
    recheck_delay: RecheckDelay | None = _UNSET
    retry_before_notification: ArgosCount = _UNSET
    ipv4: ArgosBool = _UNSET
    ipv6: ArgosBool = _UNSET
    timeout: Duration = _UNSET
    locations: Annotated[list[Token], msgspec.Meta(min_length=1)] = _UNSET
    alerts: dict[Severity, list[Text | Recipient] | None] = _UNSET
    # Argos's optional sections: none when left empty.
    mail: Mail | None = _UNSET
    gotify: list[Gotify] | None = _UNSET
    apprise: dict[str, list[Text] | None] | None = _UNSET
    db: Db = _UNSET
    env: Text = _UNSET
    cookie_secret: Text = _UNSET
    session_duration: SessionDuration = _UNSET
    remember_me_duration: Duration | None = _UNSET
    unauthenticated_access: Access | None = _UNSET
    ldap: Ldap | None = _UNSET
    root_path: RootPath = _UNSET
    quorum: Positive = _UNSET
    reminder_interval: Duration = _UNSET
    maintenance: list[Window] | None = _UNSET
    webhooks: dict[str, Webhook] = _UNSET
    channels: dict[str, Channel] = _UNSET
    degraded_location: Degraded = _UNSET


class Alerting(_Strict):
    """A host's own recipients and maintenance windows (a website's too)."""

    add_alerts_recipients: Recipients = _UNSET
    overwrite_alerts_recipients: Recipients = _UNSET
    maintenance: list[Window] | None = _UNSET


class Website(Alerting):
    quorum: Positive = _UNSET
    depends_on: list[Text] = _UNSET


class Recurring(_Strict):
    max_results_age: Seconds = _UNSET
    #: Argos raises 60 seconds or less to 100.
    max_lock_seconds: Annotated[int, msgspec.Meta(gt=60, le=int(MAX_SECONDS))] = _UNSET
    time_without_agent: Seconds = _UNSET


class Threshold(_Strict):
    """A host metric's levels, as ``configuration/hosts.py`` reads them."""

    warning: float | None
    critical: float | None
    for_: Annotated[float, msgspec.Meta(ge=0, le=MAX_SECONDS)]

    def __post_init__(self) -> None:
        if self.warning is not None and self.critical is not None and self.warning > self.critical:
            raise ValueError(f"warning ({self.warning:g}) is above critical ({self.critical:g})")


class PercentThreshold(Threshold):
    warning: Percent | None
    critical: Percent | None


class LoadThreshold(Threshold):
    warning: PerCore | None
    critical: PerCore | None


class Thresholds(_Strict):
    cpu: PercentThreshold = _UNSET
    memory: PercentThreshold = _UNSET
    swap: PercentThreshold = _UNSET
    load: LoadThreshold = _UNSET
    disk: PercentThreshold = _UNSET
    inodes: PercentThreshold = _UNSET


Globs = list[Annotated[str, msgspec.Meta(pattern=r"^[/*]")]]


class Filesystems(_Strict):
    include: Globs
    exclude: Globs
    include_types: list[Text]
    exclude_types: list[Text]


class HostRules(_Strict):
    thresholds: Thresholds
    filesystems: Filesystems
    retry_before_notification: Count
    alerting: Alerting


class Hosts(_Strict):
    defaults: HostRules
    machines: dict[Token, HostRules]


class Component(_Strict):
    name: Text
    tasks: list[Token]
    domains: list[Text]


class Group(_Strict):
    name: Text
    components: list[Component]


class Page(_Strict):
    slug: Token
    title: Text
    description: str
    groups: list[Group]


class Settings(_Strict):
    general: General
    ssl_thresholds: list[tuple[Seconds, Level]]
    websites: dict[str, Website] = _UNSET
    agent_tokens: list[Text] = _UNSET
    recurring: Recurring = _UNSET
    hosts: Hosts | None = _UNSET
    status_pages: list[Page] = _UNSET


def _refusal(settings: Any) -> tuple[str, str] | None:
    """msgspec's words for what is wrong with ``settings`` and its path (``$.general…``)."""
    try:
        msgspec.convert(settings, Settings, dec_hook=_hook)
    except msgspec.ValidationError as exc:
        # msgspec's words, then `` - at `$.path` `` (nothing at the top: ``$``); the words
        # may quote the value, which may hold anything.
        message, at, path = str(exc).rpartition(" - at `")
        path = path.removesuffix("`").removeprefix("key` in `")
        return (message, path) if at and path.startswith("$") else (str(exc), "$")
    return None


_STEP = re.compile(r"\.(\w+)|\[(\d+)\]|(\[\.\.\.\])")
_FIELD = re.compile(r"Object (contains unknown|missing required) field `(.*)`")


def problem(settings: Any) -> str | None:
    """Why ``settings`` cannot be the settings of an apply, naming the key as the file's
    reader does (``general.channels.webhook:ops.rate_limit.count``); None when they can."""
    found = _refusal(settings)
    if found is None:
        return None
    message = found[0]
    key = _named(settings, found)
    field = _FIELD.fullmatch(message)
    if field:
        key = f"{key}.{field[2]}" if key else field[2]
        message = "unknown key" if field[1] == "contains unknown" else "required key is missing"
    return f"settings: {key}: {message}"


def _named(settings: Any, found: tuple[str, str]) -> str:
    """``found``'s path with each mapping's key msgspec leaves out (``[...]``): the one that,
    alone in its mapping, is still refused alike."""
    names: list[str] = []
    trail: list[Any] = []
    node = settings
    for step in _STEP.finditer(found[1]):
        name, index, _ = step.groups()
        if name is not None:
            key: Any = name
        elif index is not None:
            key = int(index)
        else:
            within = node if isinstance(node, dict) else {}
            key = next(
                (
                    k
                    for k in within
                    if _refusal(_replaced(settings, trail, {k: within[k]})) == found
                ),
                "…",
            )
        names.append(f"[{key}]" if isinstance(key, int) else f".{key}" if names else str(key))
        trail.append(key)
        node = _at(node, key)
    return "".join(names)


def _at(node: Any, key: Any) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


def _replaced(root: Any, trail: list[Any], value: Any) -> Any:
    """``root`` with what is at ``trail`` replaced by ``value`` (copies along the way)."""
    if not trail:
        return value
    copy = dict(root) if isinstance(root, dict) else list(root)
    copy[trail[0]] = _replaced(root[trail[0]], trail[1:], value)
    return copy
