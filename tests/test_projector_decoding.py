"""``decode_batch``: a fetch's messages as events in log order, each stream sequence once,
and what is no event recorded as such."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from events import codec, contract
from runtime.framepull import Delivered
from services.projector.decoding import decode_batch
from services.projector.fold import Undecodable
from tests.test_events import SAMPLES

ROOT = Path(__file__).resolve().parents[1]


def _delivered(seq: int, data: bytes, subject: str) -> Delivered:
    reply = f"$JS.ACK.EVENTS.projector.1.{seq}.{seq}.1796153546616000000.0"
    return Delivered(None, subject, reply, data)  # type: ignore[arg-type]


async def test_messages_come_out_in_order_each_once() -> None:
    event = SAMPLES[1]
    data, subject = codec.encode(event), contract.subject_of(event)
    msgs = [_delivered(s, data, subject) for s in (3, 1, 2, 3, 1, 4)]
    batch = await decode_batch(msgs)
    assert [seq for seq, _ in batch] == [1, 2, 3, 4]
    assert all(codec.encode(ev) == data for _, ev in batch)  # type: ignore[arg-type]
    in_order = await decode_batch([_delivered(s, data, subject) for s in (5, 6, 7)])
    assert [seq for seq, _ in in_order] == [5, 6, 7]


async def test_what_is_no_event_is_recorded_as_undecodable() -> None:
    [(seq, ev)] = await decode_batch([_delivered(9, b"\x00not json", "tocsin.check.x")])
    assert seq == 9 and isinstance(ev, Undecodable)
    assert ev.subject == "tocsin.check.x" and "not a JSON event" in ev.reason
    assert ev.at == 1796153546.616


#: Run in a process of its own (the collector's settings are the process's): what a projector
#: process does with 4 batches of a backlog (each decoded, folded, its rows made), counting
#: the collector's runs.
_FOLDING = """
import asyncio, gc, sys, tempfile
from pathlib import Path
from bench.common import write_config
from bench.projector import events
from configuration import config
from services.projector import requests, rowsets, writers
from services.projector.decoding import collect_rarely, decode_batch
from services.projector.fold import fold
from runtime.framepull import Delivered

cfg = config.parse(write_config(Path(tempfile.mkdtemp()) / "t.yaml", "http://h", 3000, "1m"))
log = events(cfg, 20_000, 1)
collect_rarely()
runs = []
gc.callbacks.append(lambda phase, info: phase == "start" and runs.append(info["generation"]))

async def backlog():
    for start in range(0, len(log), 5000):
        msgs = [
            Delivered(None, subject, f"$JS.ACK.EVENTS.p.1.{seq}.{seq}.0.0", data)
            for seq, (subject, data, _) in enumerate(log[start : start + 5000], start + 1)
        ]
        changes = fold(await decode_batch(msgs))
        rowsets.rowset(requests.merged(changes.requests, changes.request_status)[0])
        writers._task_update_rows(changes)

asyncio.run(backlog())
print(len(runs))
"""


def test_a_backlog_is_folded_without_the_collector_going_through_its_batches() -> None:
    """A batch's thousands of objects live until it is written and die by reference count:
    a collection scanning them was CPU spent for nothing (twice per batch at 10,000)."""
    out = subprocess.run(
        [sys.executable, "-c", _FOLDING],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout.split()[-1]) <= 1
