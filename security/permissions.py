"""What each identity may publish and subscribe to: pure functions, one per role.

Agents get exactly their job: pull from their location's work consumer, ack
what they were handed, publish their own completions, heartbeats and
dead-letter records, receive replies on their own inbox prefix. Everything
else is refused by the server, including reading the event log (no consumer
creation, no direct get, no subscription to ``tocsin.>``).
"""

from __future__ import annotations

from typing import Any

from events import streams, subjects

ROLES = ("agent", "scheduler", "projector", "web", "notifier", "admin")

#: No service may destroy the log or the work queue; only ``admin`` (a human) can.
_DESTRUCTIVE = ["$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>"]
#: Every stream of a deployment but WORK: the scheduler deletes a dead-lettered request from
#: WORK (a work queue keeps a message no agent acked) and no message of any of these. A deny
#: outweighs any allow, so the one message deletion it needs is left out of its denials by
#: naming the others; ``tests/test_security_permissions.py`` holds this list to the streams a
#: deployment has.
KEPT_STREAMS = (streams.EVENTS, streams.ADVISORIES, "KV_tocsin_leases", "KV_tocsin_transient_keys")
_SCHEDULER_DENIED = [
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    *(f"$JS.API.STREAM.MSG.DELETE.{s}" for s in KEPT_STREAMS),
]


#: Where the agents' inboxes are, each under the agent's name.
_AGENT_INBOXES = f"{subjects.INBOX}.agent"


def inbox_prefix(role: str, name: str) -> str:
    """Agents get their own reply subjects, so one agent cannot read another's replies
    (which carry the requests it pulled and the acks of its publishes)."""
    if role == "agent":
        return f"{_AGENT_INBOXES}.{subjects.check_token(name, 'agent name')}"
    return subjects.INBOX


def _rules(pub: list[str], sub: list[str], pub_deny: list[str] | None = None) -> dict[str, Any]:
    perms: dict[str, Any] = {"publish": {"allow": pub}, "subscribe": {"allow": sub}}
    if pub_deny:
        perms["publish"]["deny"] = pub_deny
    return perms


def agent(name: str, location: str) -> dict[str, Any]:
    consumer = streams.agent_consumer_name(location)
    return _rules(
        pub=[
            f"$JS.API.CONSUMER.MSG.NEXT.{streams.WORK}.{consumer}",
            # The same pull through a leaf node, addressed to the hub's JetStream domain.
            f"$JS.*.API.CONSUMER.MSG.NEXT.{streams.WORK}.{consumer}",
            f"$JS.ACK.{streams.WORK}.{consumer}.>",
            # Its answers under its own name and location: a completion cannot claim another
            # location (and so answer that location's requests).
            subjects.completed(name, location, "*"),
            subjects.started(name, location, "*"),
            # The live log lines of the runs of its location, under its name (core NATS, not
            # the log), and the question of which ones anybody watches.
            subjects.live_of_agent(name, location),
            subjects.WATCHING_ASK,
            subjects.heartbeat(name, location),
            subjects.host_observed(name, location),
            subjects.agent_deadletter(name),
        ],
        sub=[f"{inbox_prefix('agent', name)}.>", subjects.WATCHING],
    )


def scheduler() -> dict[str, Any]:
    return _rules(
        pub=[
            "$JS.API.>",  # ensures streams and consumers, the lease bucket, replays the log
            *(
                f"$JS.ACK.{streams.EVENTS}.{streams.completions_durable(s)}.>"
                for s in range(streams.MAX_SHARDS)
            ),
            f"$JS.ACK.{streams.ADVISORIES}.{streams.SCHEDULER_ADVISORIES}.>",
            "$KV.tocsin_leases.>",
            "$KV.tocsin_transient_keys.>",  # sealing keys of locations without their own
            subjects.CONFIG_APPLIED,
            subjects.REQUESTED_ALL,
            subjects.JUDGED_ALL,
            subjects.DEADLETTER_ALL,
            subjects.HOST_TASKS_ALL,
            "_INBOX.>",  # answers to "check now"
        ],
        sub=["_INBOX.>", subjects.CHECK_NOW],
        pub_deny=_SCHEDULER_DENIED,
    )


def projector() -> dict[str, Any]:
    return _rules(
        pub=["$JS.API.>", f"$JS.ACK.{streams.EVENTS}.>", subjects.DEADLETTER_ALL],
        sub=["_INBOX.>"],
        pub_deny=_DESTRUCTIVE,
    )


def notifier() -> dict[str, Any]:
    return _rules(
        pub=[
            "$JS.API.>",
            f"$JS.ACK.{streams.EVENTS}.>",
            f"{subjects.PREFIX}.notification.>",
            subjects.DEADLETTER_ALL,
        ],
        # It follows silences, acknowledgements, heartbeats (the no-agent alert) and the
        # configuration in force live, besides replaying them.
        sub=[
            "_INBOX.>",
            f"{subjects.PREFIX}.silence.>",
            subjects.ACKNOWLEDGED,
            subjects.HEARTBEAT_ALL,
            subjects.CONFIG_APPLIED,
        ],
        pub_deny=_DESTRUCTIVE,
    )


def web() -> dict[str, Any]:
    # The web service reads PostgreSQL; on the bus it may look at the log and at the
    # consumers' backlogs for /metrics, record the pings of heartbeat monitors (its ping
    # endpoint), an operator's acknowledgement and what status pages collect (operators'
    # incidents, subscribers), ask the scheduler for "check now" and follow the live log
    # lines of runs, telling the agents which ones it follows. An agent's question is answered
    # in its inbox on the one subject it asks with, ``<inbox>.watching``: not where its pulled
    # requests arrive, and no ``allow_responses``, which would let the web answer on whatever
    # reply subject a message hands it (a subject of the log, which JetStream keeps).
    return _rules(
        pub=[
            subjects.ACKNOWLEDGED,
            subjects.PINGED_ALL,
            subjects.STATUS_ALL,
            "$JS.API.INFO",
            f"$JS.API.STREAM.INFO.{streams.EVENTS}",
            f"$JS.API.CONSUMER.LIST.{streams.EVENTS}",
            f"$JS.API.CONSUMER.LIST.{streams.WORK}",
            f"$JS.API.DIRECT.GET.{streams.EVENTS}",
            f"$JS.API.DIRECT.GET.{streams.EVENTS}.>",
            subjects.CHECK_NOW,
            subjects.WATCHING,
            f"{_AGENT_INBOXES}.*.*.{subjects.WATCHING_REPLY}",
        ],
        sub=["_INBOX.>", f"{subjects.LIVE_PREFIX}.>", subjects.WATCHING_ASK],
    )


def admin() -> dict[str, Any]:
    # A human operator: `tocsin config apply`, `nats stream view`, repairs.
    return _rules(pub=[">"], sub=[">"])


def for_role(role: str, name: str, location: str | None = None) -> dict[str, Any]:
    if role == "agent":
        if location is None:
            raise ValueError("an agent identity needs a location")
        return agent(name, location)
    fns = {
        "scheduler": scheduler,
        "projector": projector,
        "notifier": notifier,
        "web": web,
        "admin": admin,
    }
    if role not in fns:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    return fns[role]()
