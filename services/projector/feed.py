"""The rebuild's feed: a process of its own pulls the log and checks every message on another
core, while the rebuild folds and writes.

A rebuild is bound by the CPU of its one Python process (py-spy: a third of it parsing NATS
frames and decoding events). ``python -m services.projector.feed NATS_URL CONSUMER UNTIL
BATCH`` pulls the rebuild's consumer up to stream sequence UNTIL and writes each batch to
its standard output as one frame (a 4-byte length, then msgpack): ``[reached, entries]``,
each entry ``[seq, subject, payload]`` for an event ``lenient.decode`` admits (``[seq,
subject, payload, stored]`` for a heartbeat or host figures: when the log stored it), or
``[seq, subject, None, reason, excerpt, at]`` for what the projector records as undecodable
(the same ``decoding`` code, so the same dead letters). A frame of length 0 ends the feed. The
rebuild (``Feed``) decodes the admitted payloads again without checking them twice.
"""

from __future__ import annotations

import asyncio
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from events import codec, lenient, streams
from runtime import bus
from runtime.framepull import Delivered, Pull
from services.projector.decoding import (
    DECODE_SLICE,
    LIVENESS,
    Batch,
    collect_rarely,
    ordered,
    received,
    stored_at,
    undecodable,
)
from services.projector.fold import Undecodable

#: The directory the ``services`` package is in: the feed runs the rebuild's own code.
_ROOT = Path(__file__).resolve().parents[2]


async def entries(msgs: list[Delivered]) -> list[list[Any]]:
    """What the rebuild needs of ``msgs``: in order, each once, checked as the projector does
    (yielding now and then: the previous batch is written to the rebuild meanwhile)."""
    out: list[list[Any]] = []
    for n, (seq, msg) in enumerate(zip(*ordered(msgs), strict=True), 1):
        try:
            ev = lenient.decode(msg.data, msg.subject)
        except codec.DecodeError as exc:
            bad = undecodable(seq, msg.subject, msg.data, exc, stored_at(msg))
            out.append([seq, bad.subject, None, bad.reason, bad.excerpt, bad.at])
        else:
            if isinstance(ev, LIVENESS):
                out.append([seq, msg.subject, msg.data, stored_at(msg)])
            else:
                out.append([seq, msg.subject, msg.data])
        if n % DECODE_SLICE == 0:
            await asyncio.sleep(0)
    return out


async def feed(nats_url: str, consumer: str, until: int, batch: int) -> None:
    nc = await bus.connect(nats_url, "projector-rebuild-feed")
    pull = await Pull(nc, streams.EVENTS, consumer).start()
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(sys.stdout.fileno(), "wb", buffering=0)
    )
    # ``drain`` returns once everything is written (the end of the feed included), not at
    # 64 KiB left: the rebuild paces the feed, one batch ahead.
    transport.set_write_buffer_limits(high=0)
    out = asyncio.StreamWriter(transport, protocol, None, loop)

    async def fetched(reached: int) -> tuple[int, bytes]:
        msgs = await pull.fetch(min(batch, until - reached), timeout=10)
        reached = msgs[-1].metadata.sequence.stream
        return reached, msgspec.msgpack.encode([reached, await entries(msgs)])

    ahead = asyncio.create_task(fetched(0)) if until > 0 else None
    try:
        while ahead is not None:
            reached, frame = await ahead
            # The next batch is pulled and checked while the rebuild reads this one.
            ahead = asyncio.create_task(fetched(reached)) if reached < until else None
            out.write(len(frame).to_bytes(4, "big") + frame)
            await out.drain()
        out.write(b"\0\0\0\0")
        await out.drain()
    finally:
        if ahead is not None:
            ahead.cancel()
        await pull.close()
        await bus.close(nc)


class Feed:
    """The rebuild's side: starts the feed process and reads its batches."""

    def __init__(self, nats_url: str, consumer: str, until: int, batch: int) -> None:
        self.args = [nats_url, consumer, str(until), str(batch)]
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Feed:
        path = [str(_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, *self.args, stdout=asyncio.subprocess.PIPE, env=env
        )
        return self

    async def next(self) -> tuple[int, Batch] | None:
        """The next batch and the stream sequence it reaches; None when the feed is done."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            size = int.from_bytes(await self.proc.stdout.readexactly(4), "big")
            frame = await self.proc.stdout.readexactly(size) if size else b""
        except asyncio.IncompleteReadError:
            code = await self.proc.wait()
            raise RuntimeError(f"the rebuild's feed process ended ({code})") from None
        if not size:
            await self.proc.wait()
            return None
        reached, items = msgspec.msgpack.decode(frame)
        out: Batch = []
        for n, item in enumerate(items, 1):
            if item[2] is None:
                out.append((item[0], Undecodable(item[1], item[3], item[4], item[5])))
            elif len(item) == 4:
                stored = partial(float, item[3])
                out.append((item[0], received(lenient.decode_admitted(item[2]), stored)))
            else:
                out.append((item[0], lenient.decode_admitted(item[2])))
            if n % DECODE_SLICE == 0:
                await asyncio.sleep(0)
        return reached, out

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def main() -> None:
    collect_rarely()
    nats_url, consumer, until, batch = sys.argv[1:5]
    uvloop.run(feed(nats_url, consumer, int(until), int(batch)))


if __name__ == "__main__":
    main()
