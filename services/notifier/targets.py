"""What a silence or an acknowledgement names, checked against the tasks in force.

The notifier matches a silence's domain and task, and an acknowledgement's task, to a task's
by equality (``silences.matching``): one that names no task in force would be recorded, listed
and audited, and hold nothing back. ``tocsin silence add`` and ``tocsin ack`` refuse it, with
the names it is close to; a website's URL as the configuration writes it stands for its domain.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Mapping

from nats.js import JetStreamContext

from configuration import diff as configdiff
from configuration import redaction
from configuration.inforce import in_force
from events import codec, subjects
from events.types import ConfigApplied
from runtime import bus


class UnknownTarget(ValueError):
    """The silence or acknowledgement would match no task in force; the message says why."""


async def in_force_domains(js: JetStreamContext) -> dict[str, str]:
    """Each task in force (the configuration's, and the hosts' the scheduler derived) → its
    domain, from the log."""
    found = {t.id: t.domain for t in (await in_force(js)).tasks.values()}
    hosts = []
    async for msg in bus.replay(js, subjects.HOST_TASKS_ALL):
        with contextlib.suppress(codec.DecodeError):  # the projector dead-letters it
            ev = codec.decode(msg.data, msg.subject)
            if isinstance(ev, ConfigApplied):
                hosts.append(ev)
    found.update({t.id: t.domain for t in configdiff.fold(hosts).values()})
    return found


def _close(text: str, names: Iterable[str]) -> str:
    near = difflib.get_close_matches(text, sorted(set(names)), n=3)
    return f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""


def _nothing_in_force(tasks: Mapping[str, str]) -> None:
    if not tasks:
        raise UnknownTarget(
            "no configuration is in force in the log, so no task to name: "
            "`tocsin config apply FILE` first"
        )


def task(tasks: Mapping[str, str], text: str) -> str:
    """``text`` when it is a task in force; ``UnknownTarget`` otherwise."""
    _nothing_in_force(tasks)
    if text in tasks:
        return text
    raise UnknownTarget(f"no task {text!r} in force{_close(text, tasks)}")


def target(
    tasks: Mapping[str, str], domain: str | None, task_id: str | None
) -> tuple[str | None, str | None]:
    """The domain (as the tasks spell it) and task a silence holds back, each when given;
    ``UnknownTarget`` when they name no task in force together. Neither: everything."""
    if domain is None and task_id is None:
        return None, None
    _nothing_in_force(tasks)
    if task_id is not None:
        task(tasks, task_id)
    if domain is None:
        return None, task_id
    # A URL as the configuration writes it stands for its domain, credentials masked as the
    # log shows them (``http://u:p@h:1/`` → ``••••1a2b3c4d@h:1``): the silence never holds them.
    wanted = redaction.domain_key(domain.strip())
    spelt = {d.lower(): d for d in tasks.values()}  # a host name's case is no difference
    found = spelt.get(wanted.lower())
    if found is None:
        near = _close(wanted, spelt.values())
        raise UnknownTarget(f"no task in force has the domain {wanted!r}{near}")
    if task_id is not None and tasks[task_id] != found:
        raise UnknownTarget(
            f"task {task_id!r} is of the domain {tasks[task_id]!r}, not {found!r}: "
            "a silence of both would hold nothing back"
        )
    return found, task_id
