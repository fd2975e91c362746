"""Poison on every subject a service consumes: recorded as a dead letter, skipped, and every
service keeps running."""

from __future__ import annotations

import time
from collections import Counter

import asyncpg
import msgspec
import nats
from hypothesis import HealthCheck, given, settings

from events import codec, streams
from tests.faults.harness import Services, count, quiesce_and_check
from tests.helpers import wait_for
from tests.test_contract import JSON

REQUEST = {
    "type": "check.requested",
    "v": 1,
    "at": 1.0,
    "request": "r",
    "group": "g",
    "location": "default",
    "url": "http://127.0.0.1:9/",
    "method": "GET",
    "ip_version": 4,
    "timeout": 1.0,
    "due": 1.0,
    "checks": [],
}
COMPLETION = {
    "type": "check.completed",
    "v": 1,
    "at": 1.0,
    "request": "r",
    "group": "g",
    "agent": "x",
    "location": "default",
    "started": 1.0,
    "observation": {},
    "outcomes": [],
}


def poisons(valid: dict) -> list[bytes]:  # type: ignore[type-arg]
    enc = msgspec.json.encode
    return [
        b"not json {",
        enc({**valid, "v": 2}),  # a schema version this code does not know
        enc({**valid, "type": "check.exploded"}),  # an unknown type
        enc({**valid, "padding": "x" * codec.MAX_EVENT_BYTES}),  # oversized
        enc({**valid, "at": "yesterday", "checks": "all"}),  # valid JSON, wrong field types
        enc(valid).replace(b'"group":"g"', b'"group":"\xff"'),  # a string that is not UTF-8
    ]


def request_poisons() -> list[bytes]:
    """Requests with a bad member, lists past their bounds, numbers beyond float and int64,
    NUL, and members drawn by hypothesis: each one a dead letter of that request."""
    enc = msgspec.json.encode
    spec = {"task": "t", "kind": "status-is", "expected": 200}
    now = time.time()
    base = {**REQUEST, "group": "poison", "at": now, "due": now, "checks": [spec]}
    codec.decode(enc(base), "tocsin.check.requested.default.poison")  # valid but for the poison
    bad: list[dict] = [  # type: ignore[type-arg]
        {**base, "checks": [spec, {"task": "t2"}]},  # one member missing fields
        {**base, "checks": [spec] * 10_001},  # more checks than a request may hold
        {**base, "checks": [{**spec, "expected": [0] * 1001}]},  # a huge expected value
        {**base, "checks": [{**spec, "expected": 2**64}]},  # beyond int64
        {**base, "checks": [{**spec, "expected": "a\x00b"}]},  # NUL
        {**base, "url": "http://x/\x00"},
        {**base, "checks": [{**spec, "task": "a.b"}]},  # a task that is not a token
        {**base, "timeout": -1.0},
        {**base, "request_data": {"headers": {"X": "\x00"}}},
    ]
    raw = [enc(b) for b in bad]
    raw.append(enc(base).replace(b'"timeout":1.0', b'"timeout":1e999'))  # infinity
    raw.append(enc(base).replace(b'"timeout":1.0', b'"timeout":NaN'))
    raw.append(enc({**base, "checks": [{**spec, "expected": 1.5}]}).replace(b"1.5", b"1e400"))

    @settings(
        max_examples=40, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(JSON)
    def member(value: object) -> None:
        data = enc({**base, "checks": [spec, {**spec, "expected": value}]})
        try:
            codec.decode(data, "tocsin.check.requested.default.poison")
        except codec.DecodeError:
            raw.append(data)  # only what is poison: a valid request is run, not recorded

    member()
    return raw


#: Subject → the consumers that must record each poison published there.
TARGETS = {
    "tocsin.check.requested.default.poison": (REQUEST, {"agent:a1", "projector"}),
    "tocsin.check.completed.x.poison": (COMPLETION, {streams.SCHEDULER_COMPLETIONS, "projector"}),
    "tocsin.task.judged.poison": (COMPLETION, {"projector"}),
    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.WORK.agents-default": (
        COMPLETION,
        {streams.SCHEDULER_ADVISORIES},
    ),
}


async def test_poison_on_every_consumed_subject(svc: Services):
    procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]

    async def results() -> int:
        return await count(svc.database_url, "SELECT count(*) FROM results")

    await wait_for(results, 60, what="first results")
    nc = await nats.connect(svc.nats_url)
    js = nc.jetstream()
    expected: Counter[tuple[str, str]] = Counter()
    requests = ("tocsin.check.requested.default.poison", request_poisons())
    for subject, consumers, bad in [
        *((subject, consumers, poisons(valid)) for subject, (valid, consumers) in TARGETS.items()),
        (requests[0], TARGETS[requests[0]][1], requests[1]),
    ]:
        for data in bad:
            ack = await js.publish(subject, data)
            for consumer in consumers:
                # The projector records the event of the log itself; the others record the
                # message they consumed (a WORK or ADVISORIES copy), each exactly once.
                expected[
                    (consumer, f"{subject}#{ack.seq}" if consumer == "projector" else subject)
                ] += 1
    await nc.close()
    poisoned_at = time.time()

    async def recorded() -> bool:
        rows = await _dead_letters(svc.database_url)
        return all(rows[k] == n for k, n in expected.items())

    await wait_for(recorded, 60, what="every poison recorded by every consumer")
    # Services run on: all alive, and results keep coming after the poison.
    assert all(p.alive for p in procs), [p.output() for p in procs if not p.alive]
    await wait_for(
        lambda: count(
            svc.database_url,
            "SELECT count(*) FROM results WHERE checked_at > to_timestamp($1)",
            poisoned_at + 1,
        ),
        30,
        what="results after the poison",
    )
    stats = await quiesce_and_check(svc, [procs[1]], [procs[2]])
    assert stats["dead"] == 0


async def _dead_letters(url: str) -> Counter[tuple[str, str]]:

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT consumer, subject, source_seq, stream FROM "
            "tocsin.dead_letters WHERE kind = 'undecodable'"
        )
    finally:
        await conn.close()
    out: Counter[tuple[str, str]] = Counter()
    for r in rows:
        if r["consumer"] == "projector":
            out[("projector", f"{r['subject']}#{r['source_seq']}")] += 1
        else:
            out[(r["consumer"], r["subject"])] += 1
    return out


async def test_poison_last_on_a_groups_request_subject_stops_nothing(svc: Services):
    """The scheduler reads the last request of a group's subject (restoring its schedule,
    judging the completions of an earlier term): poison there is skipped, not a scheduler
    that cannot start, nor a real completion recorded as a dead letter in its place."""
    procs = [svc.projector(), svc.scheduler(), svc.agent("a1")]
    await wait_for(
        lambda: count(svc.database_url, "SELECT count(*) FROM results"), 60, what="results"
    )
    procs[1].kill()  # completions of its requests now wait for the next scheduler
    conn = await asyncpg.connect(svc.database_url)
    try:
        groups = [r["grp"] for r in await conn.fetch("SELECT DISTINCT grp FROM tocsin.tasks")]
    finally:
        await conn.close()
    nc = await nats.connect(svc.nats_url)
    js = nc.jetstream()
    for group in groups:
        subject = f"tocsin.check.requested.default.{group}"
        await js.publish(subject, msgspec.json.encode({**REQUEST, "group": group}))
    await nc.close()
    restarted = time.time()
    procs[1] = svc.scheduler()
    await wait_for(
        lambda: count(
            svc.database_url,
            "SELECT count(*) FROM requests WHERE status = 'judged' AND due > to_timestamp($1)",
            restarted,
        ),
        60,
        what="requests of the restarted scheduler judged",
    )
    assert all(p.alive for p in procs), [p.output()[-3000:] for p in procs if not p.alive]
    stats = await quiesce_and_check(svc, [procs[1]], [procs[2]])
    assert stats["dead"] == 0
    assert not await count(
        svc.database_url,
        "SELECT count(*) FROM dead_letters WHERE consumer = $1 AND subject LIKE "
        "'tocsin.check.completed.%'",
        streams.SCHEDULER_COMPLETIONS,
    )
