"""Subjects: the routing keys of the log, usable by permissions and `nats` CLI filters.

Every event lives under ``tocsin.``; the part after the event family carries
what a reader filters on (location, agent, group).
"""

from __future__ import annotations

import re

PREFIX = "tocsin"
ALL = f"{PREFIX}.>"
CONFIG_APPLIED = f"{PREFIX}.config.applied"
REQUESTED_ALL = f"{PREFIX}.check.requested.>"
COMPLETED_ALL = f"{PREFIX}.check.completed.>"
JUDGED_ALL = f"{PREFIX}.task.judged.>"
HEARTBEAT_ALL = f"{PREFIX}.agent.heartbeat.>"
DEADLETTER_ALL = f"{PREFIX}.deadletter.>"
NOTIFICATION_ALL = f"{PREFIX}.notification.>"
SILENCE_ALL = f"{PREFIX}.silence.>"
HOST_OBSERVED_ALL = f"{PREFIX}.host.observed.>"
HOST_TASKS_ALL = f"{PREFIX}.host.tasks.>"
ACKNOWLEDGED = f"{PREFIX}.incident.acknowledged"
PINGED_ALL = f"{PREFIX}.monitor.pinged.>"

#: Core NATS, outside the log (``events/control.py``): the scheduler in charge answers "check
#: now" requests; agents publish the live log lines of a run, one subject per request.
CHECK_NOW = f"{PREFIX}_control.check_now"
LIVE_PREFIX = f"{PREFIX}_live"
#: Which groups' live lines someone follows (the web, for its request pages): agents tell only
#: those runs. Watchers announce on WATCHING; an agent starting asks them on WATCHING_ASK.
WATCHING = f"{PREFIX}_control.watching"
WATCHING_ASK = f"{PREFIX}_control.watching_ask"
#: Where NATS clients take replies (nats-py's default inbox prefix; every identity's own prefix
#: is under it: ``security/permissions.py``).
INBOX = "_INBOX"
#: The last token of the subject an agent asks WATCHING_ASK with, in its own inbox: the one
#: subject of agents' inboxes a watcher may answer on (its pulled requests arrive elsewhere).
WATCHING_REPLY = "watching"
#: Status pages: operators' incidents and subscribers (issue 14).
STATUS_ALL = f"{PREFIX}.status.>"

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_token(value: str, what: str) -> str:
    """A name used inside a subject must be one token: letters, digits, ``-`` and ``_``."""
    if not _TOKEN.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-64 letters, digits, '-' or '_' (it is a subject token)"
        )
    return value


def is_inbox(subject: str) -> bool:
    """Whether ``subject`` is a client's inbox: the only kind of subject a service answers on
    when a message hands it one (any other could be a subject of the log, which JetStream
    keeps whoever publishes on it)."""
    return subject.startswith(f"{INBOX}.")


def watching_reply(inbox: str) -> str:
    """The subject an agent asks which runs are followed with, under one of its inboxes."""
    return f"{inbox}.{WATCHING_REPLY}"


def is_watching_reply(subject: str) -> bool:
    return is_inbox(subject) and subject.endswith(f".{WATCHING_REPLY}")


def request_group(request: str) -> str:
    """The group of a request id ``<group>.<location>.<run>`` (each part a subject token), or
    ValueError saying what an id is: its parts go into subjects."""
    parts = request.split(".")
    if len(parts) != 3 or not all(_TOKEN.match(p) for p in parts):
        raise ValueError(
            f"request id {request!r} must be <group>.<location>.<run>, each part 1-64 letters,"
            " digits, '-' or '_'"
        )
    return parts[0]


def requested(location: str, group: str) -> str:
    return f"{PREFIX}.check.requested.{location}.{group}"


def requested_now(location: str, group: str) -> str:
    """A "check now" request: beside the scheduled ones (the agents' filter takes both), not
    among them, so that the last scheduled request of a group is still the last on its own
    subject."""
    return f"{PREFIX}.check.requested.{location}.{group}.now"


def requested_for_location(location: str) -> str:
    return f"{PREFIX}.check.requested.{location}.>"


def completed(agent: str, location: str, group: str) -> str:
    """An agent's answer, under its name and its location: its permissions admit only its own
    pair, so the location an answer claims is the agent's (the group stays the last token)."""
    return f"{PREFIX}.check.completed.{agent}.{location}.{group}"


def started(agent: str, location: str, group: str) -> str:
    return f"{PREFIX}.check.started.{agent}.{location}.{group}"


def judged(group: str) -> str:
    return f"{PREFIX}.task.judged.{group}"


def imported_requested(location: str, group: str) -> str:
    """History imported from another monitor (Argos): folded into the read models, outside
    the subjects agents take work from, the scheduler judges and the notifier alerts on."""
    return f"{PREFIX}.imported.check.requested.{location}.{group}"


def imported_completed(group: str) -> str:
    return f"{PREFIX}.imported.check.completed.{group}"


def imported_judged(group: str) -> str:
    return f"{PREFIX}.imported.task.judged.{group}"


def heartbeat(agent: str, location: str) -> str:
    return f"{PREFIX}.agent.heartbeat.{agent}.{location}"


def deadletter(kind: str) -> str:
    return f"{PREFIX}.deadletter.{kind}"


def agent_deadletter(agent: str) -> str:
    """Where an agent records what it could not decode: under its own id, so that its
    permissions can be exactly its own subjects (the kind is in the event)."""
    return f"{PREFIX}.deadletter.agent.{agent}"


def notification(outcome: str) -> str:
    """``sent`` or ``failed``."""
    return f"{PREFIX}.notification.{outcome}"


def silence(action: str) -> str:
    """``added`` or ``removed``."""
    return f"{PREFIX}.silence.{action}"


def host_observed(agent: str, location: str) -> str:
    """An agent's observations of its own host: under its name and location, so that its
    permissions can be exactly its own subjects."""
    return f"{PREFIX}.host.observed.{agent}.{location}"


def host_tasks(agent: str) -> str:
    """The scheduler's definitions of a host's tasks (``config.applied`` events of their own,
    apart from the configuration file's chain on ``tocsin.config.applied``)."""
    return f"{PREFIX}.host.tasks.{agent}"


def pinged(group: str) -> str:
    """A heartbeat monitor's pings, under its group (one task per heartbeat group)."""
    return f"{PREFIX}.monitor.pinged.{group}"


def live(request: str, agent: str) -> str:
    """Where the log lines of one request's run go, under the agent's name; ``request`` is
    ``<group>.<location>.<run>``: ``tocsin_live.<group>.<location>.<run>.<agent>``."""
    return f"{LIVE_PREFIX}.{request}.{agent}"


def live_for_group(group: str) -> str:
    """Every run's log lines of one request group, at every location."""
    return f"{LIVE_PREFIX}.{check_token(group, 'request group')}.>"


def live_of_agent(agent: str, location: str) -> str:
    """Every run's log lines of one agent at its location (its permission): what a line's
    subject names of them is what the server checked."""
    return f"{LIVE_PREFIX}.*.{location}.*.{agent}"


def status(kind: str, page: str) -> str:
    """``incident`` or ``subscriber``, of one status page (its slug is a token)."""
    return f"{PREFIX}.status.{kind}.{check_token(page, 'status page slug')}"
