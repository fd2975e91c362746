"""Each request group's request must be one its agents accept, sealed or not.

A group's request carries every check of the group with its expected value, and the request
data: thirty checks of a long ``body-contains``, or a large body (which sealing for the
location's agents makes a third larger), exceed what an event may hold. The scheduler would
then have a request no agent accepts; ``config check`` refuses the group instead, at its
first check, as the agents would refuse it.
"""

from __future__ import annotations

import time
from collections import defaultdict

import msgspec

from checks import pushed, request
from configuration.reader import Reader
from configuration.yamlsource import Where
from events import codec, subjects
from events.types import TaskDef
from security.sealing import Sealer, new_location_key

#: Below this estimate of its size (expected values, request data, URL, and room for the
#: rest), a group's request fits with room to spare: only larger ones are built and checked,
#: so that a file of 100,000 tasks is not slowed.
SURE = 64 * 1024


def _estimate(tasks: list[TaskDef]) -> int:
    first = tasks[0]
    data = len(msgspec.json.encode(first.request_data)) if first.request_data else 0
    each = sum(len(msgspec.json.encode(t.expected)) + 160 for t in tasks)
    return 2 * data + each + 2 * len(first.url) + 1024


def check(r: Reader, tasks: dict[str, TaskDef], declared: dict[str, tuple[Where, str]]) -> None:
    """Refuse, at its first check, each group whose request an agent would refuse."""
    groups: dict[str, list[TaskDef]] = defaultdict(list)
    for t in tasks.values():
        if not pushed(t.check):
            groups[t.group].append(t)
    now = time.time()
    for gid, members in groups.items():
        if _estimate(members) < SURE:
            continue
        # Sealed as for a deployment with location keys: a key of its own for each location.
        sealer = Sealer({loc: new_location_key()[1] for loc in members[0].locations})
        for location in members[0].locations:
            asked = request.build(
                members, location, request.scheduled_id(gid, location, now), now, now
            )
            try:
                for event in (asked, sealer.seal(asked)):
                    codec.encode_admitted(event, subjects.requested(location, gid))
            except codec.DecodeError as exc:
                where, path = declared[members[0].id]
                r.fail(
                    where,
                    path,
                    f"the request of {members[0].url} with its {len(members)} checks would be "
                    f"refused by the agents: {exc}",
                )
                break
