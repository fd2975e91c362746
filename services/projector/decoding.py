"""Decoding what the projector fetched: messages to events in log order, or what to record
about a message that is none (``Undecodable``). A heartbeat or a host's figures comes with
when the log stored it (``Heard``)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

from nats.js.api import RawStreamMsg

from events import codec, lenient
from events.types import AgentHeartbeat, AnyEvent, HostObserved
from runtime.framepull import Delivered
from runtime.logs import Log
from runtime.pull import stream_seq
from services.projector.fold import Undecodable
from services.projector.liveness import Heard

log = Log("tocsin.projector")


Batch = list[tuple[int, AnyEvent | Heard | Undecodable]]
#: The events kept with when the log stored them (``Heard``). A tuple: ``A | B`` in an
#: ``isinstance`` builds a union at each call, three times the test itself, for every event.
LIVENESS = (AgentHeartbeat, HostObserved)


def decode_one(
    seq: int, subject: str, data: bytes, stored: Callable[[], float]
) -> AnyEvent | Heard | Undecodable:
    """The event, or what to record about a message that is none (``stored``: the stream's
    store time, the same on a rebuild, unlike now(); asked only then, or for a heartbeat or
    host figures: parsing it for every message cost more than decoding some)."""
    try:
        return received(lenient.decode(data, subject), stored)
    except codec.DecodeError as exc:
        return undecodable(seq, subject, data, exc, stored())


def received(ev: AnyEvent, stored: Callable[[], float]) -> AnyEvent | Heard:
    """``ev``; a heartbeat or a host's figures with when the log stored it."""
    return Heard(ev, stored()) if isinstance(ev, LIVENESS) else ev


def undecodable(
    seq: int, subject: str, data: bytes, exc: codec.DecodeError, stored: float
) -> Undecodable:
    log.warning("undecodable event recorded and skipped", subject=subject, seq=seq, reason=str(exc))
    return Undecodable(printable(subject), printable(str(exc)), codec.excerpt(data), stored)


def printable(text: str) -> str:
    """Text PostgreSQL can store (no NUL), of a bounded length."""
    return text[:2000].replace("\x00", "\ufffd")


#: The collector's young generation in a process holding batches (see ``collect_rarely``).
GC_YOUNG = 100_000


def collect_rarely() -> None:
    """A batch's objects (messages, events, rows) live until its commit, and reference
    counting frees almost all of them. With the default thresholds the collector went through
    them again every 700 allocations, 20 % of the projector's CPU (7 µs per event); at 10,000
    it still ran twice per batch of 5,000 events, scanning the batches alive each time (2.4 µs
    per event). Startup's objects (modules, classes) are frozen out of collections, and a
    collection waits for more objects than the two batches alive make."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 100)


#: Messages decoded between two yields to the event loop (see ``decode_batch``).
DECODE_SLICE = 256


async def decode_batch(msgs: list[Delivered]) -> Batch:
    """The events of ``msgs`` in log order, each stream sequence once.

    A fetch can hand the same event twice: after an outage longer than ack_wait the server
    redelivers, and late answers to an earlier pull land in a later fetch. Written twice in
    one transaction, such an event broke the batch on the results key, and every event alone
    passed the isolation, so the projector retried the same batch forever.

    It yields every ``DECODE_SLICE`` messages: the next batch is decoded while the previous
    one is written, and a whole batch decoded at once held each statement's answer back.
    """
    batch: Batch = []
    for n, (seq, msg) in enumerate(zip(*ordered(msgs), strict=True), 1):
        try:
            event: AnyEvent | Heard | Undecodable = lenient.decode(msg.data, msg.subject)
            if isinstance(event, LIVENESS):
                event = Heard(event, stored_at(msg))
        except codec.DecodeError as exc:
            event = undecodable(seq, msg.subject, msg.data, exc, stored_at(msg))
        batch.append((seq, event))
        if n % DECODE_SLICE == 0:
            await asyncio.sleep(0)
    return batch


def ordered(msgs: list[Delivered]) -> tuple[list[int], list[Delivered]]:
    """The stream sequences of ``msgs`` and the messages, in log order and each once."""
    seqs = list(map(stream_seq, msgs))
    if seqs != sorted(set(seqs)):  # rare: put in order, each sequence once
        once = dict(zip(seqs, msgs, strict=True))
        seqs = sorted(once)
        msgs = [once[seq] for seq in seqs]
    return seqs, msgs


def stored_at(msg: Delivered) -> float:
    meta = msg.metadata
    return meta.timestamp.timestamp() if meta.timestamp else time.time()


def raw_stored_at(raw: RawStreamMsg) -> float:
    return raw.time.timestamp() if raw.time else time.time()
