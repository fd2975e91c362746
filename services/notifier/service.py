"""The notifier service: judgements → decisions (PostgreSQL, then ack) → sends (outbox).

Four loops share one process: ``_consume`` turns each ``task.judged`` event
into outbox rows and task state in one transaction, then acks it (a
redelivery finds the task's ``last_seq`` already at that sequence and does
nothing); the sender (sender.py) sends due outbox rows and publishes their
outcomes; the agent watch (agentwatch.py) raises the no-agent alert once per
episode. Nothing is sent from a replay: the durable consumer starts at new
events and every decision is keyed by task and stream sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass

import asyncpg
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from configuration import config as configuration
from configuration import published, redaction
from configuration.inforce import InForce, configuration_in_force, in_force, last_applied_seq
from events import codec, streams, subjects
from events.types import (
    AgentHeartbeat,
    IncidentAcknowledged,
    SilenceAdded,
    SilenceRemoved,
    TaskDef,
    TaskJudged,
)
from runtime import bus, db
from runtime.logs import Log
from services.notifier import channels, retire, store, taskstate
from services.notifier import settings as notify_settings
from services.notifier.agentwatch import AgentWatch
from services.notifier.decide import TaskState
from services.notifier.judgement import message, on_judgement
from services.notifier.message import Message
from services.notifier.probewatch import ProbeWatch
from services.notifier.sender import Sender, SendOptions
from services.notifier.silences import fold as fold_silence
from services.notifier.statusmail import StatusMailer

log = Log("tocsin.notifier")
#: How long a live ``config.applied`` may take to be stored in the log after it is received.
STORED_WITHIN = 5.0


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


class Notifier:
    def __init__(self, opts: NotifierOptions) -> None:
        self.opts = opts
        #: Our file: the secret values of the channels, and the settings until the log has some.
        self.own = configuration.parse(opts.config_path)
        #: The configuration in force in the log, as last read (None: not read yet).
        self.now: InForce | None = None
        self.settings = notify_settings.from_config(self.own, opts.web_url)
        self.stopping = asyncio.Event()
        self.silences: dict[str, SilenceAdded] = {}
        #: The tasks in force in the log (``config.applied``), masked as the log shows them.
        self.logged: dict[str, TaskDef] = {}
        self.acks: dict[str, IncidentAcknowledged] = {}
        #: Set when the configuration in force changes: time to retire what it dropped.
        self.config_changed = asyncio.Event()
        self.sender = Sender(
            SendOptions(
                opts.backoff,
                opts.max_backoff,
                opts.give_up_after,
                opts.send_timeout,
                opts.concurrency,
            ),
            lambda: self.settings,
            self.stopping,
        )
        self.probes = ProbeWatch(lambda: self.settings, self._enqueue)
        self.agents = AgentWatch(
            lambda: self.settings,
            self._enqueue,
            self.sender.wake,
            self.stopping,
            opts.agent_check_every,
        )

    def stop(self) -> None:
        self.stopping.set()
        self.sender.stop()

    def reload(self) -> None:
        """SIGHUP: read our file again for its secret values; what runs stays the log's."""
        try:
            self.own = configuration.parse(self.opts.config_path)
            self._derive(reread=False)
            log.info("configuration reloaded")
        except Exception as exc:
            log.error("configuration refused; the previous one stays in force", error=str(exc))

    def _in_force(self) -> tuple[configuration.Config, list[str]]:
        if self.now is None or not self.now.last_seq:
            return self.own, []
        return configuration_in_force(self.now, self.own)

    def _derive(self, reread: bool = True) -> None:
        """The settings to run: the log's configuration in force, our file's until the log
        holds one. Secret values the log holds masked and we lack may be in our file since
        we read it (the file just applied, edited in place): it is read again for them."""
        cfg, masked = self._in_force()
        if masked and reread:
            try:
                self.own = configuration.parse(self.opts.config_path)
            except Exception as exc:  # the file being edited: what we had stays
                log.error("configuration file refused", file=self.opts.config_path, error=str(exc))
            else:
                cfg, masked = self._in_force()
        if masked:
            log.warning(
                "settings in force whose secret values are neither in this notifier's file nor "
                "in its environment: they stay masked",
                masks=",".join(masked[:10]),
            )
        self.settings = notify_settings.from_config(cfg, self.opts.web_url)
        for name, missing in channels.unresolved(self.settings).items():
            log.error(
                "channel lacks secret values applied to it: its notifications stay queued until "
                "this notifier's file (then SIGHUP) or environment has them",
                channel=name,
                file=self.opts.config_path,
                secrets="; ".join(self._why_missing(path, mask) for path, mask in missing),
            )

    def _why_missing(self, path: str, mask: str) -> str:
        """Whether our file has another value where the log has ``mask`` (stale: one of the
        two is older), or none (missing)."""
        ours = dict(published.located(self.own.general, "general")).get(path)
        if ours is None:
            return f"{path} {mask} missing"
        return f"{path} {mask} stale (this file has {redaction.hidden(ours)})"

    async def run(self) -> None:
        pool = await db.pool(self.opts.database_url, min_size=2, max_size=8)
        async with pool.acquire() as conn:
            await store.ensure_schema(conn)
        nc = await bus.connect(self.opts.nats_url, "notifier", self.stopping)
        js = nc.jetstream()
        # Still creates what is missing with default tuning (R1 on a cluster): its no-agent
        # alert must work with no scheduler running, which waiting for the scheduler's streams
        # would break (tests/test_notif_service.py). ensure() never changes existing streams.
        await streams.ensure(js, [])
        try:
            await self._follow_silences(nc, js)
            await self._follow_agents(nc, js)
            await self._follow_config(nc, js)
            status_mail = StatusMailer(lambda: self.settings.mail, self.opts.web_url)
            await status_mail.start(js)
            sub = await js.pull_subscribe_bind(durable=streams.NOTIFIER, stream=streams.EVENTS)
            puller = bus.Puller(sub, "judgements")
            # Each loop waits out a PostgreSQL restart on its own (what it fetched and did not
            # ack comes back); anything else ends the notifier.
            loops = [
                asyncio.create_task(db.outliving(what, loop, self.stopping))
                for what, loop in (
                    ("judgements", lambda: self._consume(puller, pool)),
                    ("sending", lambda: self.sender.run(pool)),
                    ("audit", lambda: self.sender.publish(js, pool)),
                    ("agents", lambda: self.agents.run(pool)),
                    ("retirement", lambda: self._retire(pool)),
                    ("status mail", lambda: status_mail.run(js, self.stopping)),
                )
            ]
            stop: asyncio.Task[object] = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait({stop, *loops}, return_when=asyncio.FIRST_COMPLETED)
            for t in loops:
                t.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            for finished in done:
                if finished is not stop and not finished.cancelled() and finished.exception():
                    raise finished.exception()  # type: ignore[misc]
        finally:
            await bus.close(nc)
            await pool.close()

    # silences, acknowledgements and agents, followed live ---------------------------

    async def _follow_silences(self, nc: Client, js: JetStreamContext) -> None:
        async def on_msg(msg: Msg) -> None:
            self._silence(msg.data, msg.subject)

        # Subscribe before replaying: an event landing in between is seen twice, harmlessly.
        for subject in (subjects.SILENCE_ALL, subjects.ACKNOWLEDGED):
            await nc.subscribe(subject, cb=on_msg)
            async for msg in bus.replay(js, subject):
                self._silence(msg.data, msg.subject)

    def _silence(self, data: bytes, subject: str) -> None:
        with contextlib.suppress(codec.DecodeError):
            ev = codec.decode(data, subject)
            if isinstance(ev, SilenceAdded | SilenceRemoved):
                fold_silence(self.silences, ev)
            elif isinstance(ev, IncidentAcknowledged):
                # The latest counts: it covers the episode it was made in (judgement.py).
                if ev.at >= getattr(self.acks.get(ev.task), "at", 0.0):
                    self.acks[ev.task] = ev

    async def _follow_agents(self, nc: Client, js: JetStreamContext) -> None:
        """Agents are seen when their heartbeats are received (the time an agent writes in
        them is its clock's, which may run fast or slow): live ones now, the log's last ones
        when the log stored them."""

        async def on_msg(msg: Msg) -> None:
            self._heartbeat(msg.data, msg.subject, time.time())

        await nc.subscribe(subjects.HEARTBEAT_ALL, cb=on_msg)
        async for msg in bus.replay(js, subjects.HEARTBEAT_ALL, last_per_subject=True):
            self._heartbeat(msg.data, msg.subject, msg.metadata.timestamp.timestamp())

    async def _follow_config(self, nc: Client, js: JetStreamContext) -> None:
        """The configuration in force in the log (``tocsin config apply``, a scheduler's
        SIGHUP): its channels, recipients and rules, and its tasks, so that a judgement of a
        task applied from another file than ours still names its URL and check."""

        async def follow(msg: Msg | None = None) -> None:
            if msg is not None:
                await _stored_after(js, self.now.last_seq if self.now else 0)
            self.now = await in_force(js)
            self.logged = self.now.tasks
            try:
                self._derive()
            except Exception as exc:  # what only an admin can apply; never stop on it
                log.error("settings in force refused; the previous ones stay", error=str(exc))
            else:
                log.info("configuration in force", revision=(self.now.revision or "")[:12])
            self.config_changed.set()

        await nc.subscribe(subjects.CONFIG_APPLIED, cb=follow)
        await follow()

    def _heartbeat(self, data: bytes, subject: str, received: float) -> None:
        with contextlib.suppress(codec.DecodeError):
            if isinstance(codec.decode(data, subject), AgentHeartbeat):
                self.agents.seen(received)

    # decisions -----------------------------------------------------------------------

    async def _consume(self, puller: bus.Puller[Msg], pool: asyncpg.Pool) -> None:
        while not self.stopping.is_set():
            msgs = await puller.fetch(100)
            if not msgs:
                continue
            async with pool.acquire() as conn:
                for msg in msgs:
                    await self._record(conn, msg)
            self.sender.wake.set()
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
            states = await taskstate.lock_states(conn, sorted({j.task for j in ev.judgements}))
            deps = sorted({d for j in ev.judgements for d in s.depends.get(j.task, ())})
            severities = await taskstate.severities(conn, deps) if deps else {}
            for j in ev.judgements:
                state = states.get(j.task, TaskState())
                if seq <= state.last_seq:
                    continue  # a redelivery, or another notifier got here first
                # Our file's definition first, then the log's (``tocsin config apply``).
                out = on_judgement(
                    s, self.silences, ev.at, j, state, severities, self.acks, ev.group, self.logged
                )
                if out.held and j.severity != (j.previous or "ok"):
                    log.info(
                        "notification held back",
                        task=j.task,
                        domain=out.domain,
                        severity=j.severity,
                        why=out.held,
                    )
                await taskstate.save_state(conn, j.task, seq, out.state, ev.group)
                for intent in out.intents:
                    m = message(s, ev.at, seq, j, intent, ev.group, self.logged)
                    key = f"{j.task}:{seq}:{intent.channel}"
                    await self._enqueue(conn, key, intent.channel, m, out.domain)
            await self.probes.observe(conn, ev, seq)

    async def _retire(self, pool: asyncpg.Pool) -> None:
        """Close the episodes of the tasks the configuration in force dropped (retire.py):
        when it changes, and every minute."""
        while not self.stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.config_changed.wait(), retire.EVERY)
            self.config_changed.clear()
            now = self.now
            if now is None or not now.last_seq:
                continue  # no configuration in the log yet: nothing left it
            async with pool.acquire() as conn:
                done = await retire.retire(conn, self.settings, now.tasks.keys(), now.last_seq)
            if done:
                log.info("no longer monitored", tasks=",".join(done[:20]), count=len(done))
                self.sender.wake.set()

    async def _enqueue(
        self,
        conn: asyncpg.Connection,
        key: str,
        channel: str,
        m: Message,
        domain: str | None = None,
    ) -> None:
        """``domain``: the website's, for its own recipients (``redaction.domain_key``)."""
        found = channels.recipients(self.settings, channel, domain)
        if not found:
            log.warning("channel has no recipient configured", channel=channel, key=key)
        for i, r in enumerate(found):
            await store.enqueue_grouped(conn, self.settings, f"{key}:{i}", channel, r.label, m)


async def main(opts: NotifierOptions) -> None:
    notifier = Notifier(opts)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, notifier.stop)
    loop.add_signal_handler(signal.SIGINT, notifier.stop)
    loop.add_signal_handler(signal.SIGHUP, notifier.reload)
    await notifier.run()


async def _stored_after(js: JetStreamContext, seq: int) -> None:
    """Wait (a few seconds at most) until the log holds a ``config.applied`` after ``seq``: a
    live one can reach a subscriber before the stream has stored it, and a replay then folds
    the log without it, leaving the previous configuration in force until the next apply."""
    deadline = time.monotonic() + STORED_WITHIN
    while time.monotonic() < deadline:
        if await last_applied_seq(js) > seq:
            return
        await asyncio.sleep(0.05)
