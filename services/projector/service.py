"""The projector: folds EVENTS into PostgreSQL, exactly once in effect.

Each batch is written in one transaction together with the stream sequence it
reaches; the transaction commits, then the batch is acked. A redelivered event
at or below the stored sequence is skipped. Every event of a batch is either
applied or recorded as a dead letter in that transaction, and a batch that does
not start right after the stored sequence is completed from the stream first
(the events in between were handed out before a crash and await redelivery):
the position never passes an event the read models do not hold. On commit,
``NOTIFY tocsin_changed`` tells the web service to push the change to open pages.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from functools import partial

import asyncpg
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from configuration.inforce import RefusedPart, last_settings
from events import contract, streams
from readmodel import CHANNEL, SCHEMA, WRITE_LOCK, ensure_schema
from runtime import bus, db, ending
from runtime.framepull import Delivered, Pull
from runtime.logs import Log
from services.projector import requests as request_model
from services.projector.decoding import (
    Batch,
    decode_batch,
    decode_one,
    printable,
    raw_stored_at,
)
from services.projector.fold import Undecodable, fold
from services.projector.liveness import Heard
from services.projector.requests import Request
from services.projector.writers import write

log = Log("tocsin.projector")


@dataclass
class ProjectorOptions:
    nats_url: str
    database_url: str
    #: Events per batch at most (a backlog's). A task's row is rewritten once per batch
    #: whatever the events about it, and a commit waits for the disk: 10,000 rather than
    #: 5,000 took a tenth off PostgreSQL's CPU per event in a backlog. Two batches are
    #: unacknowledged at a time (one written, the next fetched): within the consumer's
    #: ``max_ack_pending`` (20,000 by default).
    batch: int = 10_000
    #: While events come a few at a time, one batch per ``linger`` seconds at most
    #: (``bus.gathered_until``): an event waits at most that much longer.
    linger: float = 0.1
    #: Argos's ``recurring_tasks.max_results_age`` (seconds): older results leave the read
    #: models (the log keeps them; a rebuild brings them back until the next prune).
    max_results_age: float | None = None


async def known_requests(conn: asyncpg.Connection, batch: Batch) -> dict[str, Request]:
    """The requests of earlier batches that the events of ``batch`` refer to: a completion
    must answer one not completed yet, a start or a dead letter changes one."""
    ids = request_model.referenced(ev for _, ev in batch)
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT id, location, grp, tasks, completion_seq, agent FROM requests"
        " WHERE id = ANY($1::text[])",
        list(ids),
    )
    # A completed request's agent is the one that completed it: starts after the completion
    # change nothing (``requests.started``).
    return {
        r["id"]: Request(
            r["location"],
            r["grp"],
            frozenset(r["tasks"]),
            None if r["completion_seq"] is None else (r["completion_seq"], r["agent"]),
        )
        for r in rows
    }


async def apply_batch(
    conn: asyncpg.Connection,
    batch: Batch,
    schema: str = SCHEMA,
    notify: bool = True,
) -> int:
    """Write the part of ``batch`` beyond the stored position, in one transaction.

    Returns how many events were applied (0 when all were seen before).
    """
    async with conn.transaction():
        await conn.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        position = await conn.fetchval(
            f"SELECT seq FROM \"{schema}\".position WHERE name = 'events' FOR UPDATE"
        )
        fresh = [(seq, ev) for seq, ev in batch if seq > position]
        if not fresh:
            return 0
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        changes = fold(fresh, await known_requests(conn, fresh))
        await write(conn, changes, schema)
        if notify:
            payload = json.dumps({"seq": changes.last_seq, "tasks": changes.touched_tasks})
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
    return len(fresh)


async def apply_refusing(
    conn: asyncpg.Connection, batch: Batch, schema: str = SCHEMA, notify: bool = True
) -> int:
    """``apply_batch``, the events the read model refuses recorded as dead letters instead:
    nothing a batch holds stops the projector or a rebuild, and both record the same dead
    letters (dated by the event, not by the clock). Raises only what ``lost`` says is
    PostgreSQL going away: never turned into dead letters, the caller retries the batch."""
    try:
        return await apply_batch(conn, batch, schema, notify)
    except Exception as exc:
        if db.lost(exc):
            raise
        log.error("batch refused by the read model; isolating the event", error=str(exc))
    batch = await _isolate(conn, batch, schema)
    try:
        return await apply_batch(conn, batch, schema, notify)
    except Exception as exc:
        if db.lost(exc):
            raise
    # Every event passes alone but the batch still fails (events in conflict with each
    # other): one transaction per event, rather than the same batch forever.
    applied = 0
    for seq, ev in batch:
        try:
            applied += await apply_batch(conn, [(seq, ev)], schema, notify)
        except Exception as exc:
            if db.lost(exc):
                raise
            # Refused alone even as its dead letter: record the bare fact, not its content.
            bare = Undecodable("?", f"refused: {type(exc).__name__}", "", ev.at)
            applied += await apply_batch(conn, [(seq, bare)], schema, notify)
    return applied


async def _isolate(conn: asyncpg.Connection, batch: Batch, schema: str) -> Batch:
    """``batch`` with each event the read model refuses on its own replaced by its dead
    letter (each tried in a transaction rolled back)."""
    out: Batch = []
    for seq, ev in batch:
        try:
            async with conn.transaction():
                await apply_batch(conn, [(seq, ev)], schema, notify=False)
                raise _Rollback
        except _Rollback:
            out.append((seq, ev))
        except Exception as exc:
            if db.lost(exc):
                raise
            event = ev.event if isinstance(ev, Heard) else ev
            if isinstance(event, Undecodable):
                subject = event.subject
            else:
                subject = contract.subject_of(event)
            reason = f"{type(event).__name__} refused by the read model: {exc}"
            out.append((seq, Undecodable(subject, printable(reason), "", ev.at)))
    return out


class _Rollback(Exception):
    """Raised to undo a trial write."""


class Projector:
    def __init__(self, opts: ProjectorOptions) -> None:
        self.opts = opts
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        conn = await db.connect(self.opts.database_url)
        await ensure_schema(conn)
        nc = await bus.connect(self.opts.nats_url, "projector", self.stopping)
        js = nc.jetstream()
        pruning = asyncio.create_task(self._prune(js))
        # The scheduler creates the streams with the operator's tuning (replicas…): created
        # here first, they would be R1 on a cluster. Only our own consumer is ours to create.
        if not await streams.wait_for_stream(
            js, streams.EVENTS, streams.projector_consumer(streams.Tuning()), self.stopping
        ):
            await ending.ended([pruning])
            await bus.close(nc)
            await conn.close()
            return
        pull = await Pull(nc, streams.EVENTS, streams.PROJECTOR).start()
        puller = bus.Puller(pull, "events", gather=self.opts.linger)
        ahead = asyncio.create_task(self._next(puller))
        try:
            while not self.stopping.is_set():
                msgs, batch = await ahead
                # The next batch is fetched and decoded while PostgreSQL writes this one; it is
                # acknowledged only after its own commit, like this one.
                ahead = asyncio.create_task(self._next(puller))
                if not msgs:
                    continue
                conn = await self._apply_until_done(conn, js, batch)
                await self.acknowledge(msgs)
        finally:
            # Ended before their connections close: pruning runs on otherwise, unawaited.
            await ending.ended([ahead, pruning])
            await bus.close(nc)
            await conn.close()

    async def _prune(self, js: JetStreamContext) -> None:
        """Every minute (or tenth of the age), results and requests older than the configuration
        in force's ``recurring_tasks.max_results_age`` go (our file's until the log holds
        settings)."""
        max_age = self.opts.max_results_age
        refused = 0
        while True:
            try:
                _, logged = await last_settings(js)
                if logged is not None:
                    max_age = (logged.get("recurring") or {}).get("max_results_age")
            except RefusedPart as exc:  # settings no file could give: the last age read
                if exc.seq != refused:  # once per apply, not every round
                    log.error(
                        "configuration refused; pruning by the last age read",
                        subject=exc.subject,
                        seq=exc.seq,
                        reason=exc.reason,
                        max_age=max_age,
                    )
                refused = exc.seq
            except Exception as exc:  # NATS away: the last age known
                log.warning("could not read the configuration in force", error=str(exc))
            if not max_age:
                await asyncio.sleep(60.0)
                continue
            try:
                conn = await db.connect(self.opts.database_url)
                try:
                    gone = await conn.execute(
                        f'DELETE FROM "{SCHEMA}".results '
                        "WHERE checked_at < now() - make_interval(secs => $1)",
                        max_age,
                    )
                    # A request per check run: as many rows as results, gone at the same age.
                    asked = await conn.execute(
                        f'DELETE FROM "{SCHEMA}".requests '
                        "WHERE requested_at < now() - make_interval(secs => $1)",
                        max_age,
                    )
                finally:
                    await conn.close()
                log.info(
                    "old results pruned",
                    deleted=gone.split()[-1],
                    requests=asked.split()[-1],
                    max_age=max_age,
                )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("pruning old results failed", error=str(exc))
            await asyncio.sleep(min(60.0, max_age / 10))

    async def _next(self, puller: bus.Puller[Delivered]) -> tuple[list[Delivered], Batch]:
        msgs = await puller.fetch(self.opts.batch)
        return msgs, await decode_batch(msgs)

    async def acknowledge(self, msgs: list[Delivered]) -> None:
        """Ack a committed batch (AckAll: its last message). A crash before this ack means a
        redelivery, which the stored position makes harmless."""
        await msgs[-1].ack()

    async def _apply_until_done(
        self,
        conn: asyncpg.Connection,
        js: JetStreamContext,
        batch: Batch,
    ) -> asyncpg.Connection:
        while True:
            try:
                batch = await self._with_gaps_filled(conn, js, batch)
                break
            except Exception as exc:
                if not db.lost(exc):
                    raise
                log.warning("postgres lost; reconnecting", error=str(exc))
                if not conn.is_closed():
                    conn.terminate()
                conn = await db.connect(self.opts.database_url)
        return await self._apply_decoded(conn, batch)

    async def _with_gaps_filled(
        self,
        conn: asyncpg.Connection,
        js: JetStreamContext,
        batch: Batch,
    ) -> Batch:
        """``batch`` with the events between the stored position and its last one that it
        lacks, read from the stream: they were delivered before a crash and are not due
        again yet, and acknowledging this batch (AckAll) would acknowledge them unapplied."""
        position = await conn.fetchval(
            f"SELECT seq FROM \"{SCHEMA}\".position WHERE name = 'events'"
        )
        # In log order, each once (``decode_batch``): a batch that starts at most right after
        # the position and holds every sequence up to its last lacks none (no set of 10,000).
        if not batch or (
            batch[0][0] <= position + 1 and batch[-1][0] - batch[0][0] + 1 == len(batch)
        ):
            return batch
        have = {seq for seq, _ in batch}
        missing = [s for s in range(position + 1, max(have, default=0)) if s not in have]
        if not missing:
            return batch
        log.warning("filling a gap in the delivered events", first=missing[0], count=len(missing))
        for seq in missing:
            raw = await self._stored(js, seq)
            if raw is None:
                continue  # no such message in the stream: nothing to apply
            stored = partial(raw_stored_at, raw)
            batch.append((seq, decode_one(seq, raw.subject or "?", raw.data or b"", stored)))
        return sorted(batch, key=lambda item: item[0])

    async def _stored(self, js: JetStreamContext, seq: int) -> RawStreamMsg | None:
        """Message ``seq`` of EVENTS (None when the stream has none), waiting out what passes
        by itself (a leader election, NATS away) instead of failing the batch."""
        delay = 0.25
        while True:
            try:
                return await js.get_msg(streams.EVENTS, seq)
            except NotFoundError:
                return None
            except Exception as exc:
                if not streams.transient(exc):
                    raise
                log.warning("reading a missing event failed; retrying", seq=seq, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _apply_decoded(self, conn: asyncpg.Connection, batch: Batch) -> asyncpg.Connection:
        while True:
            try:
                await apply_refusing(conn, batch)
                return conn
            except Exception as exc:
                if not db.lost(exc):
                    raise
                # PostgreSQL restarted: reconnect and retry the same batch (not acked yet).
                log.warning("postgres lost; reconnecting", error=str(exc))
                if not conn.is_closed():
                    conn.terminate()
                conn = await db.connect(self.opts.database_url)


async def main(opts: ProjectorOptions) -> None:
    projector = Projector(opts)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, projector.stop)
    loop.add_signal_handler(signal.SIGINT, projector.stop)
    await projector.run()
