"""The sending half of the notifier: due outbox rows → channels, outcomes → the log.

``run`` claims due outbox rows and sends each in its own task, so a slow or
failing receiver holds up nothing else; a failure is retried with backoff.
A receiver gets the changes of a task in order and ends on the latest: a row
that a newer one about the same task and recipient makes stale is superseded
(recorded as a final failure) instead of sent or retried, and no row goes
out while an older one about the same task is in flight (store.py).
A channel with a rate limit (``general.channels.NAME.rate_limit``) is
checked before each send: over its limit, the row waits until the window
frees (superseded meanwhile if the task changes again), so a flapping site
costs the receiver at most the limit.
``publish`` puts the recorded "notification sent / failed" events in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import msgspec
from nats.js import JetStreamContext

from runtime.logs import Log
from services.notifier import channels, grouping, ratelimit, store
from services.notifier.message import Message
from services.notifier.settings import NotifySettings

log = Log("tocsin.notifier")


@dataclass
class SendOptions:
    backoff: float = 10.0  # first retry delay; doubles up to max_backoff
    max_backoff: float = 600.0
    give_up_after: float = 86400.0  # a notification still failing after a day is dropped
    send_timeout: float = 60.0
    concurrency: int = 50


def backoff(attempt: int, base: float, cap: float) -> float:
    return float(min(base * 2 ** max(attempt - 1, 0), cap))


class Sender:
    def __init__(
        self, opts: SendOptions, settings: Callable[[], NotifySettings], stopping: asyncio.Event
    ) -> None:
        self.opts, self.settings, self.stopping = opts, settings, stopping
        self.wake = asyncio.Event()
        self.wake_publisher = asyncio.Event()
        self.sending: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self.wake.set()
        self.wake_publisher.set()

    async def run(self, pool: asyncpg.Pool) -> None:
        lease = self.opts.send_timeout * 2
        try:
            while not self.stopping.is_set():
                room = self.opts.concurrency - len(self.sending)
                rows = []
                if room > 0:
                    try:
                        async with pool.acquire() as conn:
                            rows = await store.claim(conn, room, lease)
                    except (OSError, asyncpg.PostgresError) as exc:
                        log.warning("outbox unavailable", error=str(exc))
                for row, mates in _by_group(rows):
                    t = asyncio.create_task(self._deliver_logged(pool, row, mates))
                    self.sending.add(t)
                    t.add_done_callback(self.sending.discard)
                if len(rows) == room and room > 0:
                    continue
                self.wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 0.5)
        finally:
            for t in self.sending:
                t.cancel()
            await asyncio.gather(*self.sending, return_exceptions=True)

    async def _deliver_logged(
        self, pool: asyncpg.Pool, row: asyncpg.Record, mates: list[asyncpg.Record]
    ) -> None:
        try:
            await self._deliver(pool, row, mates)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim expires and another attempt follows; say why this one broke.
            log.error("delivery crashed", exc=True, key=row["key"])

    async def _deliver(
        self, pool: asyncpg.Pool, row: asyncpg.Record, mates: list[asyncpg.Record]
    ) -> None:
        """Send ``row`` (with ``mates``, rows of its group claimed in the same batch)."""
        s = self.settings()
        m = msgspec.json.decode(row["message"], type=Message)
        channel, label, attempt = row["channel"], row["recipient"], row["attempts"]
        limit = s.rate_limits.get(channel)
        if limit is not None and await self._held(pool, row, limit, mates):
            return
        # The rows of an open group that came due with this one go out in one message.
        rows = [(row["key"], m, attempt)]
        if row["grp"]:
            async with pool.acquire() as conn:
                found = await store.claim_group(conn, row, self.opts.send_timeout * 2)
                for o in [*mates, *found]:
                    rows.append(
                        (o["key"], msgspec.json.decode(o["message"], type=Message), o["attempts"])
                    )
        whole = grouping.combine([r[1] for r in rows], row["grp"] or "")
        to = channels.find(s, channel, label, m.domain)
        # The outcome names the recipient as it is now (queued under another label while the
        # channel lacked its secrets, or before a webhook's URL changed).
        label = label if to is None else to.label
        error = None
        if to is None:
            error, retry_in = f"{channel} recipient {label} is no longer configured", None
        else:
            try:
                await asyncio.wait_for(channels.send(s, channel, to, whole), self.opts.send_timeout)
            except channels.SendError as exc:
                error = str(exc)
            except TimeoutError:
                error = f"no answer in {self.opts.send_timeout:.0f}s"
            except Exception as exc:  # a channel library failing in its own way
                error = f"{type(exc).__name__}: {exc}"
            retry_in = backoff(attempt, self.opts.backoff, self.opts.max_backoff)
            if error and time.time() + retry_in - row["created"] > self.opts.give_up_after:
                retry_in = None
        async with pool.acquire() as conn:
            # Each row records its own outcome: the log says, per task, who was told.
            for key, one, tries in rows:
                if error is None:
                    await store.mark_sent(conn, key, channel, label, one, tries)
                else:
                    await store.mark_failed(conn, key, channel, label, one, tries, error, retry_in)
        if error is None:
            log.info("notification sent", key=row["key"], channel=channel, to=label, rows=len(rows))
        else:
            log.warning(
                "notification failed",
                key=row["key"],
                channel=channel,
                to=label,
                error=error,
                attempt=attempt,
                retry_in=retry_in,
            )
        self.wake_publisher.set()

    async def _held(
        self,
        pool: asyncpg.Pool,
        row: asyncpg.Record,
        limit: ratelimit.RateLimit,
        mates: list[asyncpg.Record],
    ) -> bool:
        """True when the channel's rate limit holds this row back, with the rows of its group
        claimed with it (postponed: a newer row about their task supersedes them meanwhile,
        store.py)."""
        async with pool.acquire() as conn, conn.transaction():
            # One notifier at a time counts and claims a channel's budget.
            await store.lock_channel(conn, row["channel"])
            now = time.time()
            sent = await store.sent_since(conn, row["channel"], now - limit.per)
            ahead = await store.waiting_before(conn, row["key"], row["channel"])
            wait = ratelimit.wait(sent, now, limit, ahead)
            if wait <= 0:
                await store.reserve(conn, row["key"])
                return False
            for held in [row, *mates]:
                await store.postpone(conn, held["key"], wait)
        log.info(
            "notification held by the rate limit",
            key=row["key"],
            channel=row["channel"],
            limit=ratelimit.describe(limit),
            wait=round(wait, 1),
        )
        return True

    async def publish(self, js: JetStreamContext, pool: asyncpg.Pool) -> None:
        while not self.stopping.is_set():
            try:
                async with pool.acquire() as conn:
                    rows = await store.pending_events(conn)
                    done = []
                    for r in rows:
                        await js.publish(
                            r["subject"], bytes(r["data"]), headers={"Nats-Msg-Id": r["msg_id"]}
                        )
                        done.append(r["id"])
                    if done:
                        await store.published(conn, done)
            except Exception as exc:  # NATS or PostgreSQL away: the rows wait for next time
                log.warning("notification events not published yet", error=str(exc))
                rows = []
            if rows:
                continue
            self.wake_publisher.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake_publisher.wait(), 1.0)


def _by_group(rows: list[asyncpg.Record]) -> list[tuple[asyncpg.Record, list[asyncpg.Record]]]:
    """Claimed rows → one delivery per row, or per group (its first row carries the rest)."""
    out: list[tuple[asyncpg.Record, list[asyncpg.Record]]] = []
    groups: dict[tuple[str, str, str], list[asyncpg.Record]] = {}
    for row in rows:
        if not row["grp"]:
            out.append((row, []))
            continue
        key = (row["channel"], row["recipient"], row["grp"])
        if key in groups:
            groups[key].append(row)
        else:
            groups[key] = []
            out.append((row, groups[key]))
    return out
