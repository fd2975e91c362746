"""A completion is a result only when it answers a request of the log for its location and
group, with outcomes for that request's tasks: in one batch or across batches, live or
rebuilt. Anything else is a dead letter of that completion."""

from __future__ import annotations

import itertools
from typing import Any

import asyncpg
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.types import (
    AgentHeartbeat,
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    CheckSpec,
    CheckStarted,
    DeadLettered,
    HostObserved,
    Observation,
    TaskJudged,
)
from readmodel import SCHEMA, ensure_schema
from services.projector.rebuild import FRESH, checksum
from services.projector.service import Batch, apply_refusing
from tests.test_events import SAMPLES, T


def _request(rid: str, location: str) -> CheckRequested:
    return CheckRequested(
        at=T,
        request=rid,
        group="g1",
        location=location,
        url="https://example.org/",
        method="GET",
        ip_version=4,
        timeout=5.0,
        due=T,
        checks=[CheckSpec("t1", "status-is", 200)],
    )


def _answer(rid: str, agent: str, location: str, task: str = "t1") -> CheckCompleted:
    return CheckCompleted(
        at=T + 1,
        request=rid,
        group="g1",
        agent=agent,
        location=location,
        started=T,
        observation=Observation(status=200),
        outcomes=[CheckOutcome(task, "status-is", "success")],
    )


REQUESTS: Batch = [(1, _request("g1.us.1", "us")), (2, _request("g1.eu.1", "eu"))]
ANSWERS: Batch = [
    (3, _answer("g1.us.1", "b1", "us")),  # the agent of us answers the request of us
    (4, _answer("g1.us.1", "a1", "eu")),  # the agent of eu answers the request of us
    (5, _answer("g1.us.9", "b1", "us")),  # a request the log does not have
    (6, _answer("g1.eu.1", "a1", "eu", task="t2")),  # a task the request did not ask for
    (7, msgspec.structs.replace(_answer("g1.eu.1", "a1", "eu"), group="g2")),  # another group
    (8, _answer("g1.eu.1", "a1", "eu")),  # the agent of eu answers the request of eu
]


async def _state(conn: asyncpg.Connection, schema: str) -> tuple[list[int], list[int]]:
    results = await conn.fetch(f'SELECT seq FROM "{schema}".results ORDER BY seq')
    dead = await conn.fetch(
        f"SELECT source_seq FROM \"{schema}\".dead_letters WHERE consumer = 'projector' "
        "ORDER BY source_seq"
    )
    return [r["seq"] for r in results], [r["source_seq"] for r in dead]


async def test_only_answers_to_a_request_of_the_location_are_results(database_url: str):
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn)
        await ensure_schema(conn, FRESH)
        # Live: the requests in an earlier batch than their answers (read back from the
        # read model); rebuilt: all in one batch (folded from the batch itself).
        await apply_refusing(conn, REQUESTS)
        await apply_refusing(conn, ANSWERS)
        await apply_refusing(conn, REQUESTS + ANSWERS, schema=FRESH, notify=False)
        live = await _state(conn, SCHEMA)
        assert live == ([3, 8], [4, 5, 6, 7])
        assert await _state(conn, FRESH) == live
        agents = await conn.fetch(f'SELECT agent, location FROM "{SCHEMA}".results ORDER BY seq')
        assert [tuple(r.values()) for r in agents] == [("b1", "us"), ("a1", "eu")]
    finally:
        await conn.close()


async def test_a_request_id_asked_twice_is_the_first_one_however_the_log_is_batched(
    database_url: str,
):
    """A second request with the id of an earlier one (another location) changed what a
    completion answered only when both were in one batch: a rebuild (larger batches) then
    stored a result the live projector had refused."""
    first = (1, _request("g1.x.1", "us"))
    again = (2, _request("g1.x.1", "eu"))
    answer = (3, _answer("g1.x.1", "a1", "eu"))
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn)
        await ensure_schema(conn, FRESH)
        await apply_refusing(conn, [first])
        await apply_refusing(conn, [again, answer])
        await apply_refusing(conn, [first, again, answer], schema=FRESH, notify=False)
        assert await _state(conn, SCHEMA) == ([], [3])
        assert await _state(conn, FRESH) == ([], [3])
    finally:
        await conn.close()


def _pool() -> list[Any]:
    """What agents of two locations and a scheduler may put in the log about a few requests:
    ids that collide across locations, answers from the right and the wrong location, stray
    tasks, starts, heartbeats and agents' dead letters."""
    out: list[Any] = []
    for rid, location in [("g1.x.1", "us"), ("g1.x.1", "eu"), ("g1.x.2", "eu")]:
        out.append(_request(rid, location))
    for rid in ("g1.x.1", "g1.x.2", "g1.x.3"):
        for agent, location in [("a1", "eu"), ("b1", "us")]:
            out += [_answer(rid, agent, location), _answer(rid, agent, location, task="t9")]
            out.append(
                CheckStarted(
                    at=T, request=rid, group="g1", agent=agent, location=location, delivery=1
                )
            )
    judged = next(e for e in SAMPLES if isinstance(e, TaskJudged))
    out += [msgspec.structs.replace(judged, completion=n) for n in (3, 6, 9)]
    dead = next(e for e in SAMPLES if isinstance(e, DeadLettered))
    out += [
        msgspec.structs.replace(dead, kind="max_deliver", request=rid, deliveries=5)
        for rid in ("g1.x.1", "g1.x.2")
    ]
    host = next(e for e in SAMPLES if isinstance(e, HostObserved))
    out += [
        msgspec.structs.replace(host, at=T + i, location=loc) for i, loc in ((1, "eu"), (2, "us"))
    ]
    beat = next(e for e in SAMPLES if isinstance(e, AgentHeartbeat))
    out += [
        msgspec.structs.replace(beat, at=T + i, location=loc) for i, loc in ((1, "eu"), (2, "us"))
    ]
    return out


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.sampled_from(_pool()), min_size=1, max_size=12),
    st.lists(st.integers(1, 12), max_size=4),
)
async def test_the_read_models_do_not_depend_on_how_the_log_is_batched(
    database_url: str, events: list[Any], cuts: list[int]
):
    """The live projector folds what arrived (small batches), a rebuild folds 10,000 at a
    time: whatever the log holds, both end with the same read models."""
    log: Batch = [(i + 1, ev) for i, ev in enumerate(events)]
    bounds = sorted({0, len(log), *(c for c in cuts if c < len(log))})
    conn = await asyncpg.connect(database_url)
    try:
        for schema in (SCHEMA, FRESH):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await ensure_schema(conn, schema)
        for a, b in itertools.pairwise(bounds):
            await apply_refusing(conn, log[a:b], notify=False)
        await apply_refusing(conn, log, schema=FRESH, notify=False)
        assert await checksum(conn) == await checksum(conn, FRESH)
    finally:
        await conn.close()
