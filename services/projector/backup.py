"""``tocsin log backup FILE`` and ``tocsin log restore FILE``: the truth, saved and brought back.

They speak JetStream's own snapshot API (what ``nats stream backup|restore`` uses): the
server streams a consistent snapshot of ``EVENTS`` (its messages with their sequences and
store times, which the read models depend on) in chunks, and takes them back on another
server. A restore refuses to overwrite an existing ``EVENTS``. After a restore, ``tocsin
projector rebuild`` makes the read models from it.

The file is JSON metadata (the stream's configuration and state) on its first line, then
the snapshot's bytes, as the server sent them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, BinaryIO

from nats.aio.client import Client
from nats.aio.msg import Msg

from events import streams

CHUNK = 128 * 1024
#: The status of the server's last, empty message of a whole snapshot ("no content"); another
#: one (500 and a description) says it broke off.
END = "204"
#: Seconds without a chunk before a backup is given up.
IDLE = 30.0


class BackupError(RuntimeError):
    """The server refused or broke off; ``str()`` says what it answered."""


async def _api(nc: Client, subject: str, body: dict[str, Any], timeout: float = 10.0) -> Any:
    msg = await nc.request(subject, json.dumps(body).encode(), timeout=timeout)
    answer = json.loads(msg.data)
    if "error" in answer:
        raise BackupError(f"{subject}: {answer['error'].get('description', answer['error'])}")
    return answer


async def backup(nc: Client, path: Path, stream: str = streams.EVENTS) -> int:
    """Write a snapshot of ``stream`` to ``path``; returns its last sequence."""
    inbox = nc.new_inbox()
    chunks: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_chunk(msg: Msg) -> None:
        await chunks.put(msg)

    sub = await nc.subscribe(inbox, cb=on_chunk)
    try:
        meta = await _api(
            nc,
            f"$JS.API.STREAM.SNAPSHOT.{stream}",
            {"deliver_subject": inbox, "no_consumers": True, "chunk_size": CHUNK},
        )
        # Written aside and renamed once the server said the end: a backup broken off (the
        # server, the link, ^C) never leaves a file that looks like a whole one.
        partial = path.with_name(path.name + ".partial")
        try:
            with partial.open("wb") as out:
                out.write(json.dumps({"config": meta["config"], "state": meta["state"]}).encode())
                out.write(b"\n")
                await _receive(chunks, out, stream)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return int(meta["state"]["last_seq"])
    finally:
        await sub.unsubscribe()


async def _receive(chunks: asyncio.Queue[Msg], out: BinaryIO, stream: str) -> None:
    # The server's flow control asks for an answer on its own subject; a message of the inbox
    # with another reply subject is not the server's, and whoever runs a backup (an admin) may
    # publish anywhere: on a subject of the log, on JetStream's API.
    flow_control = f"$JS.SNAPSHOT.ACK.{stream}."
    while True:
        try:
            msg = await asyncio.wait_for(chunks.get(), IDLE)
        except TimeoutError:
            raise BackupError(f"no snapshot data for {IDLE:.0f}s") from None
        status = (msg.headers or {}).get("Status")
        if not msg.data and status in (None, END):  # the end of the snapshot
            return
        if status and status != "100":
            raise BackupError(f"snapshot broken off: {status} {msg.headers}")
        out.write(msg.data)
        if msg.reply.startswith(flow_control):  # the server waits for this to send more
            await msg.respond(b"")


async def restore(nc: Client, path: Path) -> int:
    """Restore the snapshot in ``path`` into this server; returns the last sequence."""
    with path.open("rb") as f:
        meta = json.loads(f.readline())
        stream = meta["config"]["name"]
        answer = await _api(nc, f"$JS.API.STREAM.RESTORE.{stream}", meta)
        target = answer["deliver_subject"]
        while chunk := f.read(CHUNK):
            await _chunk(nc, target, chunk)
    done = json.loads((await nc.request(target, b"", timeout=60)).data)
    if "error" in done:
        raise BackupError(f"restore of {stream}: {done['error'].get('description', done)}")
    return int(done["state"]["last_seq"])


async def _chunk(nc: Client, target: str, chunk: bytes) -> None:
    reply = json.loads((await nc.request(target, chunk, timeout=30)).data or b"{}")
    if isinstance(reply, dict) and "error" in reply:
        raise BackupError(f"restore refused a chunk: {reply['error']}")
