"""A configuration's settings as the log holds them, and back.

``config.applied`` carries, beside the task diff, every setting of the configuration
(``general`` with its channels, the websites' alerting and maintenance, ``hosts``, status
pages …) whole, so that the scheduler, the notifier and the web run the settings in force
whatever file they were started with. Secrets are masked the way task secrets are
(``••••`` and a fingerprint): values from ``${ENV}`` and the keys the parser marks secret
(channel tokens and URLs, passwords, ``cookie_secret``), and credentials in URLs. A
service puts the real values back from what it has: its own file's secrets and its
environment, matched by fingerprint; a value it lacks stays masked (and is logged).
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec

from configuration import redaction
from configuration.config import Config
from configuration.reader import join
from events.types import TaskDef
from events.values import MASKED

#: The fields of ``Config`` the log holds as settings (the tasks travel as a diff).
FIELDS = (
    "general",
    "ssl_thresholds",
    "websites",
    "agent_tokens",
    "recurring",
    "hosts",
    "status_pages",
)
_TYPES = typing.get_type_hints(Config)


def public(cfg: Config) -> dict[str, Any]:
    """``cfg``'s settings as the log may hold them, in their JSON form."""
    out = {
        name: _masked(msgspec.to_builtins(getattr(cfg, name)), cfg.secrets, name == "websites")
        for name in FIELDS
    }
    # As a decoded event shows them (tuples are lists): an apply compares the two.
    return msgspec.json.decode(msgspec.json.encode(out))  # type: ignore[no-any-return]


def _masked(value: Any, secrets: set[str], domains: bool = False) -> Any:
    """Every text of ``value`` with its secrets masked, and every key that is one. ``domains``:
    the keys (the websites') or the texts (a status page component's) are
    ``[user:pass@]host[:port]``, whose credentials are masked as a task's domain is."""
    if isinstance(value, dict):
        return {
            (_domain(k, secrets) if domains else _key(k, secrets)): _masked(
                v, secrets, k == "domains"
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_domain(v, secrets) if domains else _masked(v, secrets) for v in value]
    return _text(value, secrets) if isinstance(value, str) else value


def _domain(value: Any, secrets: set[str]) -> Any:
    return redaction.public_url(value, secrets) if isinstance(value, str) else value


def _key(key: str, secrets: set[str]) -> str:
    """A key of the settings: a word of the configuration (``bind_pwd``) stays whole whatever
    secret it contains (a password ``pw``), or it would be no key the log admits."""
    return redaction.hidden(key) if key in secrets else key


def _text(text: str, secrets: set[str]) -> str:
    text = redaction.mask_secrets(text, secrets)
    # Only where a scheme says it is a URL: an e-mail address keeps its ``@``.
    return redaction.public_url(text) if "://" in text else text


def config(
    tasks: dict[str, TaskDef],
    settings: Mapping[str, Any],
    own: Config,
    revision: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Config, list[str]]:
    """The configuration in force: the log's tasks and settings, with the secret values
    ``own`` (a service's file) and ``env`` know put back. Also the masks left unresolved."""
    known = _known(own, os.environ if env is None else env)
    masks = set(redaction.MASKED.findall(msgspec.json.encode(settings).decode()))
    plain = {name: _unmasked(settings.get(name), known) for name in FIELDS}
    left = sorted(masks - known.keys())
    parts = {
        name: msgspec.convert(plain[name], _TYPES[name])
        for name in FIELDS
        if plain[name] is not None
    }
    found = Config(
        source=own.source,
        digest=revision or own.digest,
        tasks=tasks,
        # What was put back is as secret here as it was where it was applied.
        secrets=own.secrets | {known[fp] for fp in masks & known.keys()},
        **parts,
    )
    return found, [redaction.MASK + fp for fp in left]


def _known(own: Config, env: Mapping[str, str]) -> dict[str, str]:
    """fingerprint → value of every secret this service has."""
    values: set[str] = set(own.secrets) | {v for v in env.values() if v}
    texts = [t.url for t in own.tasks.values()] + [t.domain for t in own.tasks.values()]
    texts += _texts(msgspec.to_builtins([getattr(own, n) for n in FIELDS]))
    for text in texts:
        # Any ``user@``: only masks with its fingerprint are put back, and an e-mail address
        # is never masked, so the user of one never stands in for a secret.
        userinfo = redaction.credentials(text)[1]
        if userinfo:
            values.add(userinfo)
        if "://" in text and "?" in text:  # a token in a query string is masked alone
            values.update(value for _, _, value in redaction.query_pairs(text) if value)
    return {redaction.fingerprint(v): v for v in values}


#: The parts of ``general`` the notifier sends with: their secrets are channels' URLs,
#: tokens and passwords.
CHANNELS = ("mail", "gotify", "apprise", "webhooks")


def located(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """``(key path, text)`` of every text of ``value`` (``general.gotify[0].tokens[1]``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from located(v, join(path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from located(v, join(path, i))
    elif isinstance(value, str):
        yield path, value


def masks(value: Any, path: str) -> list[tuple[str, str]]:
    """``(key path, mask)`` of every mask left in ``value``: a secret value not put back."""
    return [(p, m.group(0)) for p, text in located(value, path) for m in MASKED.finditer(text)]


def channel_masks(settings: Mapping[str, Any] | None) -> dict[str, str]:
    """Each mask of the channels' settings as the log holds them → its key path."""
    general = (settings or {}).get("general") or {}
    return {
        mask: path
        for part in CHANNELS
        for path, mask in masks(general.get(part), f"general.{part}")
    }


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        yield from value
        value = list(value.values())
    if isinstance(value, list):
        for v in value:
            yield from _texts(v)
    elif isinstance(value, str):
        yield value


def _unmasked(value: Any, known: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {redaction.unmask(k, known): _unmasked(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [_unmasked(v, known) for v in value]
    return redaction.unmask(value, known) if isinstance(value, str) else value
