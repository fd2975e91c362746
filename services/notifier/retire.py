"""Tasks that leave the configuration while not ok: whoever was told of their failure is told
they are no longer monitored, once, and their episode ends.

A task whose check changes gets a new id (the old one is removed), so without this an alert
stood forever: no judgement of the old task ever comes again. The configuration in force is
the log's (``config.applied``); the pass runs when it changes and every minute (a judgement
the scheduler made just before it stopped judging a removed task may land after the change).
A host's tasks are the scheduler's, defined per host on their own chain: they are left alone.
The decision is pure (``gone``, ``farewells``); ``retire`` does it in one transaction, with
the task states locked as judgements lock them, so two notifiers tell it once.
"""

from __future__ import annotations

import time
from collections.abc import Collection

import asyncpg
import msgspec

from checks.hostjudge import agent_of
from services.notifier import store, taskstate
from services.notifier.decide import FAILURE_SEVERITIES, TaskState, Told
from services.notifier.message import Message
from services.notifier.settings import NotifySettings

#: What a notification says when its task is no longer in the configuration in force.
REASON = "removed from the configuration in force"
#: Seconds between two passes when the configuration does not change.
EVERY = 60.0


def gone(told: dict[str, str | None], in_force: Collection[str]) -> list[str]:
    """Of the tasks whose failure was told (task → the group of its last judgement), those the
    configuration in force no longer has. A task judged before its group was recorded (None)
    waits for its next judgement; a host's tasks are not the configuration's."""
    return sorted(
        t
        for t, grp in told.items()
        if t not in in_force and grp is not None and agent_of(grp) is None
    )


def farewells(
    task: str,
    told: dict[str, Told],
    last: list[tuple[str, str, Message]],
    seq: int,
    at: float,
    web_url: str,
) -> list[tuple[str, str, str, Message]]:
    """(key, channel, recipient, message) for each recipient whose latest news of ``task``
    is its failure, on a channel told of it in the current episode. ``seq``: where in the
    log this stands (the apply, or the task's last judgement if later), so that it comes
    after what it resolves."""
    out = []
    for i, (channel, recipient, m) in enumerate(sorted(last, key=lambda x: x[:2])):
        if channel not in told or m.severity not in FAILURE_SEVERITIES:
            continue
        key = f"{task}:{seq}:removed:{i}"
        bye = msgspec.structs.replace(
            m,
            key=key,
            kind="removed",
            severity="ok",
            previous=m.severity,
            at=at,
            reason=REASON,
            failures=0,
            source_seq=seq,
            web_url=web_url,
            members=[],
            group=None,
        )
        out.append((key, channel, recipient, bye))
    return out


async def retire(
    conn: asyncpg.Connection, s: NotifySettings, in_force: Collection[str], applied: int
) -> list[str]:
    """Tell and close the episodes of the tasks ``in_force`` (the configuration applied at
    stream sequence ``applied``) no longer has; the tasks retired."""
    async with conn.transaction():
        tasks = gone(await taskstate.told_tasks(conn), in_force)
        if not tasks:
            return []
        now = time.time()
        states = await taskstate.lock_states(conn, tasks)
        done = []
        for task in tasks:
            state = states[task]
            if not state.told:  # a recovery or another notifier got here first
                continue
            seq = max(applied, state.last_seq)
            last = await store.last_told(conn, task)
            for key, channel, recipient, m in farewells(
                task, state.told, last, seq, now, s.web_url
            ):
                await store.enqueue_grouped(conn, s, key, channel, recipient, m)
            await taskstate.save_state(conn, task, seq, TaskState(seq, {}, "ok", now))
            done.append(task)
        return done
