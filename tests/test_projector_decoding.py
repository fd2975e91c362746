"""``decode_batch``: a fetch's messages as events in log order, each stream sequence once,
and what is no event recorded as such."""

from __future__ import annotations

from events import codec, contract
from services.projector.decoding import decode_batch
from services.projector.fold import Undecodable
from services.projector.pull import Delivered
from tests.test_events import SAMPLES


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
