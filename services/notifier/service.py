"""The notifier service: judgements → decisions (PostgreSQL, then ack) → sends (outbox).

Three loops share one process: ``_consume`` turns each ``task.judged`` event
into outbox rows and task state in one transaction, then acks it (a
redelivery finds the task's ``last_seq`` already at that sequence and does
nothing); ``_send`` claims due outbox rows and sends each in its own task, so
a slow or failing receiver holds up nothing else, and a failure is retried
with backoff; ``_publish`` puts the recorded "notification sent / failed"
events in the log. ``_watch_agents`` raises the no-agent alert once per
episode. Nothing is sent from a replay: the durable consumer starts at new
events and every decision is keyed by task and stream sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass

import asyncpg
import msgspec
from nats.aio.msg import Msg

from events import codec, streams, subjects
from events.types import AgentHeartbeat, SilenceAdded, SilenceRemoved, TaskJudged
from runtime import bus, db
from runtime.logs import Log
from services.notifier import channels, store
from services.notifier import settings as notify_settings
from services.notifier.decide import TaskState, decide, decide_no_agent
from services.notifier.message import Message
from services.notifier.routing import channels_for
from services.notifier.silences import fold as fold_silence
from services.notifier.silences import why_silent

log = Log("tocsin.notifier")


@dataclass
class NotifierOptions:
    nats_url: str
    database_url: str
    config_path: str
    web_url: str | None = None
    backoff: float = 10.0  # first retry delay; doubles up to max_backoff
    max_backoff: float = 600.0
    give_up_after: float = 86400.0  # a notification still failing after a day is dropped
    send_timeout: float = 60.0
    agent_check_every: float = 5.0
    concurrency: int = 50


def backoff(attempt: int, base: float, cap: float) -> float:
    return float(min(base * 2 ** max(attempt - 1, 0), cap))


class Notifier:
    def __init__(self, opts: NotifierOptions) -> None:
        self.opts = opts
        self.settings = notify_settings.load(opts.config_path, opts.web_url)
        self.stopping = asyncio.Event()
        self.wake_sender = asyncio.Event()
        self.wake_publisher = asyncio.Event()
        self.silences: dict[str, SilenceAdded] = {}
        self.last_agent_seen: float | None = None
        self.started = time.time()
        self.sending: set[asyncio.Task[None]] = set()
        self.me = f"{socket.gethostname()}:{os.getpid()}"

    def stop(self) -> None:
        self.stopping.set()
        self.wake_sender.set()
        self.wake_publisher.set()

    def reload(self) -> None:
        try:
            self.settings = notify_settings.load(self.opts.config_path, self.opts.web_url)
            log.info("configuration reloaded")
        except Exception as exc:
            log.error("configuration refused; the previous one stays in force", error=str(exc))

    async def run(self) -> None:
        pool = await db.pool(self.opts.database_url, min_size=2, max_size=8)
        async with pool.acquire() as conn:
            await store.ensure_schema(conn)
        nc = await bus.connect(self.opts.nats_url, "notifier")
        js = nc.jetstream()
        # Still creates what is missing with default tuning (R1 on a cluster): its no-agent
        # alert must work with no scheduler running, which waiting for the scheduler's streams
        # would break (tests/test_notif_service.py). ensure() never changes existing streams.
        await streams.ensure(js, [])
        try:
            await self._follow_silences(nc, js)
            await self._follow_agents(nc, js)
            loops = [
                asyncio.create_task(c)
                for c in (
                    self._consume(js, pool),
                    self._send(pool),
                    self._publish(js, pool),
                    self._watch_agents(pool),
                )
            ]
            stop: asyncio.Task[object] = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait({stop, *loops}, return_when=asyncio.FIRST_COMPLETED)
            for t in [*loops, *self.sending]:
                t.cancel()
            await asyncio.gather(*loops, *self.sending, return_exceptions=True)
            for finished in done:
                if finished is not stop and not finished.cancelled() and finished.exception():
                    raise finished.exception()  # type: ignore[misc]
        finally:
            await bus.close(nc)
            await pool.close()

    # silences and agents, followed live ---------------------------------------------

    async def _follow_silences(self, nc, js) -> None:  # type: ignore[no-untyped-def]
        async def on_msg(msg: Msg) -> None:
            self._silence(msg.data, msg.subject)

        # Subscribe before replaying: an event landing in between is seen twice, harmlessly.
        await nc.subscribe(subjects.SILENCE_ALL, cb=on_msg)
        async for msg in bus.replay(js, subjects.SILENCE_ALL):
            self._silence(msg.data, msg.subject)

    def _silence(self, data: bytes, subject: str) -> None:
        with contextlib.suppress(codec.DecodeError):
            ev = codec.decode(data, subject)
            if isinstance(ev, SilenceAdded | SilenceRemoved):
                fold_silence(self.silences, ev)

    async def _follow_agents(self, nc, js) -> None:  # type: ignore[no-untyped-def]
        async def on_msg(msg: Msg) -> None:
            self._heartbeat(msg.data, msg.subject)

        await nc.subscribe(subjects.HEARTBEAT_ALL, cb=on_msg)
        async for msg in bus.replay(js, subjects.HEARTBEAT_ALL, last_per_subject=True):
            self._heartbeat(msg.data, msg.subject)

    def _heartbeat(self, data: bytes, subject: str) -> None:
        with contextlib.suppress(codec.DecodeError):
            ev = codec.decode(data, subject)
            if isinstance(ev, AgentHeartbeat):
                self.last_agent_seen = max(self.last_agent_seen or 0.0, ev.at)

    # decisions -----------------------------------------------------------------------

    async def _consume(self, js, pool: asyncpg.Pool) -> None:  # type: ignore[no-untyped-def]
        sub = await js.pull_subscribe_bind(durable=streams.NOTIFIER, stream=streams.EVENTS)
        puller = bus.Puller(sub, "judgements")
        while not self.stopping.is_set():
            msgs = await puller.fetch(100)
            if not msgs:
                continue
            async with pool.acquire() as conn:
                for msg in msgs:
                    await self._record(conn, msg)
            self.wake_sender.set()
            await self.acknowledge(msgs)

    async def acknowledge(self, msgs: list[Msg]) -> None:
        """Ack a batch once its decisions are in PostgreSQL (tests subclass this to crash here)."""
        for msg in msgs:
            await msg.ack()

    async def _record(self, conn: asyncpg.Connection, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        try:
            ev = codec.decode(msg.data, msg.subject)
        except codec.DecodeError:
            return  # the projector records undecodable events; nothing to tell anyone
        if not isinstance(ev, TaskJudged) or not ev.judgements:
            return
        s = self.settings
        async with conn.transaction():
            states = await store.lock_states(conn, sorted({j.task for j in ev.judgements}))
            for j in ev.judgements:
                state = states.get(j.task, TaskState())
                if seq <= state.last_seq:
                    continue  # a redelivery, or another notifier got here first
                task = s.tasks.get(j.task)
                domain = task.domain if task else None
                silent = why_silent(s, self.silences, domain, j.task, ev.at)
                intents, told = decide(
                    j.severity,
                    j.failures,
                    ev.at,
                    task.retry_before_notification if task else 0,
                    lambda sev, d=domain: channels_for(s, d, sev),  # type: ignore[misc]
                    state,
                    s.reminder_interval,
                    silent is not None,
                )
                if silent and j.severity != (j.previous or "ok"):
                    log.info(
                        "notification held back",
                        task=j.task,
                        domain=domain,
                        severity=j.severity,
                        why=silent,
                    )
                await store.save_state(conn, j.task, seq, told)
                for intent in intents:
                    m = Message(
                        key="",
                        kind=intent.kind,
                        severity=intent.severity,
                        at=ev.at,
                        previous=intent.previous,
                        task=j.task,
                        domain=domain,
                        url=task.url if task else None,
                        check=task.check if task else None,
                        expected=None if task is None else str(task.expected),
                        ip_version=task.ip_version if task else None,
                        reason=j.reason,
                        failures=j.failures,
                        source_seq=seq,
                        web_url=s.web_url,
                    )
                    await self._enqueue(conn, f"{j.task}:{seq}:{intent.channel}", intent.channel, m)

    async def _enqueue(self, conn: asyncpg.Connection, key: str, channel: str, m: Message) -> None:
        found = channels.recipients(self.settings, channel, m.domain)
        if not found:
            log.warning("channel has no recipient configured", channel=channel, key=key)
        for i, r in enumerate(found):
            k = f"{key}:{i}"
            await store.enqueue(
                conn,
                k,
                channel,
                r.label,
                Message(**{**{f: getattr(m, f) for f in m.__struct_fields__}, "key": k}),
            )

    # sending -------------------------------------------------------------------------

    async def _send(self, pool: asyncpg.Pool) -> None:
        lease = self.opts.send_timeout * 2
        while not self.stopping.is_set():
            room = self.opts.concurrency - len(self.sending)
            rows = []
            if room > 0:
                try:
                    async with pool.acquire() as conn:
                        rows = await store.claim(conn, room, lease)
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("outbox unavailable", error=str(exc))
            for row in rows:
                t = asyncio.create_task(self._deliver_logged(pool, row))
                self.sending.add(t)
                t.add_done_callback(self.sending.discard)
            if len(rows) == room and room > 0:
                continue
            self.wake_sender.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake_sender.wait(), 0.5)

    async def _deliver_logged(self, pool: asyncpg.Pool, row: asyncpg.Record) -> None:
        try:
            await self._deliver(pool, row)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim expires and another attempt follows; say why this one broke.
            log.error("delivery crashed", exc=True, key=row["key"])

    async def _deliver(self, pool: asyncpg.Pool, row: asyncpg.Record) -> None:
        m = msgspec.json.decode(row["message"], type=Message)
        channel, label, attempt = row["channel"], row["recipient"], row["attempts"]
        to = next(
            (r for r in channels.recipients(self.settings, channel, m.domain) if r.label == label),
            None,
        )
        error = None
        if to is None:
            error, retry_in = f"{channel} recipient {label} is no longer configured", None
        else:
            try:
                await asyncio.wait_for(
                    channels.send(self.settings, channel, to, m), self.opts.send_timeout
                )
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
            if error is None:
                await store.mark_sent(conn, row["key"], channel, label, m, attempt)
                log.info("notification sent", key=row["key"], channel=channel, to=label)
            else:
                await store.mark_failed(
                    conn, row["key"], channel, label, m, attempt, error, retry_in
                )
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

    async def _publish(self, js, pool: asyncpg.Pool) -> None:  # type: ignore[no-untyped-def]
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

    # no agent ------------------------------------------------------------------------

    async def _watch_agents(self, pool: asyncpg.Pool) -> None:
        while not self.stopping.is_set():
            targets = channels_for(self.settings, None, "no_agent")
            if targets:
                try:
                    await self._check_agents(pool, [t.channel for t in targets])
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("no-agent check failed", error=str(exc))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.opts.agent_check_every)

    async def _check_agents(self, pool: asyncpg.Pool, targets: list[str]) -> None:
        now = time.time()
        async with pool.acquire() as conn:
            alerted = await store.get_flag(conn, "no_agent")
            what = decide_no_agent(
                self.last_agent_seen,
                self.started,
                now,
                self.settings.time_without_agent,
                alerted is not None,
            )
            if what is None:
                return
            async with conn.transaction():
                if what == "no_agent":
                    since = self.last_agent_seen or self.started
                    if not await store.set_flag(conn, "no_agent", {"since": since}):
                        return  # another notifier raised it
                    severity, previous = "no_agent", "ok"
                    reason = (
                        f"no agent heartbeat for {now - since:.0f}s (limit "
                        f"{self.settings.time_without_agent:.0f}s)"
                    )
                else:
                    flag = await store.clear_flag(conn, "no_agent")
                    if not isinstance(flag, dict):
                        return
                    since = float(flag["since"])
                    severity, previous = "ok", "no_agent"
                    reason = f"an agent reported again after {now - since:.0f}s"
                log.warning(reason)
                m = Message(
                    key="",
                    kind=what,
                    severity=severity,
                    previous=previous,
                    at=now,
                    reason=reason,
                    web_url=self.settings.web_url,
                )
                for channel in targets:
                    await self._enqueue(conn, f"{what}:{since:.3f}:{channel}", channel, m)
        self.wake_sender.set()


async def main(opts: NotifierOptions) -> None:
    notifier = Notifier(opts)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, notifier.stop)
    loop.add_signal_handler(signal.SIGINT, notifier.stop)
    loop.add_signal_handler(signal.SIGHUP, notifier.reload)
    await notifier.run()
