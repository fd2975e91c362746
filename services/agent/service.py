"""The agent: pulls check requests of its location, runs them, publishes completions, and
observes its own host (``host.py``); ``host_only`` agents do only the latter.

A request is acked only after JetStream acknowledged its completion, so an
agent that dies at any point loses nothing: the request comes back to another
agent after ``ack_wait``. The completion's message id is the request's, so a
request completed twice (the first agent died between publish and ack) is
recorded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from checks.masking import RequestSecrets
from checks.probe import Prober, cannot_run
from checks.runlog import RunLog, Sink
from events import codec, control, lenient, streams, subjects
from events.control import LogLine
from events.types import AgentHeartbeat, CheckRequested, CheckStarted
from runtime import __version__, bus, ending
from runtime.framepull import Delivered, Pull
from runtime.logs import Log
from runtime.pubacks import EachAcked, Publisher
from runtime.pull import deliveries
from security.client import ClientSecurity
from security.sealing import Opener
from services.agent.host import HostOptions, observe_forever
from services.agent.sending import publishable
from services.agent.starts import Later
from services.agent.team import Team
from services.agent.watched import Watched

log = Log("tocsin.agent")


@dataclass
class AgentOptions:
    nats_url: str
    name: str
    location: str = "default"
    concurrency: int = 500
    batch: int = 250
    heartbeat: float = 10.0
    in_progress_every: float = 10.0
    #: Credentials and TLS; by default from the environment (TOCSIN_NATS_CREDS, …).
    security: ClientSecurity = field(default_factory=ClientSecurity.from_env)
    #: The hub's JetStream domain, for an agent connected to a leaf node (env TOCSIN_JS_DOMAIN).
    js_domain: str | None = field(
        default_factory=lambda: os.environ.get("TOCSIN_JS_DOMAIN") or None
    )
    #: Observing the agent's own host (None: not at all).
    host: HostOptions | None = field(default_factory=HostOptions)
    #: Only observe the host: no work queue, no checks (a server with nothing to check from).
    host_only: bool = False
    #: One of the worker processes of one agent (``--processes``); None: the agent alone.
    team: Team | None = None


class Run:
    """A request being run: its message, when JetStream last heard that it is in progress
    (one loop tells it for all: ``_keep_alive``), and what its start says."""

    __slots__ = ("began", "delivery", "msg", "req", "since")

    def __init__(
        self, msg: Delivered, since: float, req: CheckRequested, delivery: int, began: float
    ) -> None:
        self.msg, self.since, self.req, self.delivery, self.began = msg, since, req, delivery, began


class Agent:
    def __init__(self, opts: AgentOptions) -> None:
        subjects.check_token(opts.name, "agent name")
        subjects.check_token(opts.location, "location")
        self.opts = opts
        #: The task of each request being handled; it takes itself out as it ends (a done
        #: callback per request was one more call of the loop per request).
        self.in_flight: dict[Delivered, asyncio.Task[None]] = {}
        #: Requests being run, by reply subject (``_keep_alive``, ``_say_if_running``).
        self._held: dict[str, Run] = {}
        self.completed = 0
        self.started = time.time()
        self.stopping = asyncio.Event()
        #: Checks running: a request takes a slot when it is fetched and gives it back once its
        #: answer is in. Its completion then waits for JetStream under ``_settling`` (as many):
        #: a round trip to NATS that would otherwise keep the slot from the next check. When as
        #: many completions wait (NATS slow or away), checks keep their slots: no more work.
        self._slots = asyncio.Semaphore(opts.concurrency)
        self._settling = asyncio.Semaphore(opts.concurrency)
        self._beats = 0
        self._nc: Any = None
        # Opens request secrets sealed for our location (the key is in the credentials file).
        self._unsealer = opts.security.unsealer()
        self._opener: Opener | None = None  # with the NATS connection, at the first request
        #: The groups whose runs someone follows live: only their runs are told.
        self.watched = Watched()
        #: Runs to say started once they have lasted a while, if they still run then.
        self._later = Later(self._say_if_running)
        #: Starts being published late: kept until they are out.
        self._saying: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        nc = await bus.connect(
            self.opts.nats_url,
            f"agent-{self.opts.name}",
            self.stopping,
            **self.opts.security.connect_options(),
        )
        js = nc.jetstream(domain=self.opts.js_domain)
        self._nc = nc
        beat = asyncio.create_task(self._heartbeats(js))
        keep_alive = asyncio.create_task(self._keep_alive())
        host = None
        if self.opts.host is not None:
            host = asyncio.create_task(
                observe_forever(
                    js, self.opts.name, self.opts.location, self.opts.host, self.stopping
                )
            )
        if self.opts.host_only:
            try:
                await self.stopping.wait()
            finally:
                await self._leave(nc, js, (beat, keep_alive, host), None)
            return
        await self.watched.follow(nc)
        publisher = await Publisher(nc).start()
        completions = EachAcked(publisher, stopping=self.stopping)
        # One pull request and one wake-up per batch (runtime/pull.py); a consumer not there
        # yet (no scheduler so far) is said by the fetch and waited for.
        api = f"$JS.{self.opts.js_domain}.API" if self.opts.js_domain else "$JS.API"
        durable = streams.agent_consumer_name(self.opts.location)
        pull = await Pull(nc, streams.WORK, durable, api).start()
        try:
            async with Prober(self.opts.concurrency) as prober:
                await self._pull(js, bus.Puller(pull, f"work of {durable}"), prober, completions)
                # Finish what we hold before leaving: no request waits for ack_wait.
                if self.in_flight:
                    await asyncio.gather(*self.in_flight.values(), return_exceptions=True)
        finally:
            completions.close()
            self._later.close()
            await publisher.close()
            await self._leave(nc, js, (beat, keep_alive, host), pull)

    async def _leave(
        self,
        nc: Client,
        js: JetStreamContext,
        tasks: tuple[asyncio.Task[None] | None, ...],
        pull: Pull | None,
    ) -> None:
        # Ended before the last heartbeat, which says the agent stops: none comes after it.
        await ending.ended(t for t in tasks if t is not None)
        with contextlib.suppress(Exception):
            await self._beat(js, stopping=True)
        if pull is not None:
            with contextlib.suppress(Exception):
                await pull.close()
        await bus.close(nc)

    async def _pull(
        self,
        js: JetStreamContext,
        puller: bus.Puller[Delivered],
        prober: Prober,
        completions: EachAcked,
    ) -> None:
        # Tasks made by the loop itself: ``asyncio.create_task`` asks for the running loop, a
        # system call (getpid) per request in Python 3.11.
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            # Take only as many as we have free slots for: the rest stays for other agents.
            await self._slots.acquire()
            if self.stopping.is_set():
                self._slots.release()
                break
            free = 1
            while free < self.opts.batch and not self._slots.locked():
                await self._slots.acquire()
                free += 1
            msgs = await puller.fetch(free)
            for _ in range(free - len(msgs)):
                self._slots.release()
            for msg in msgs:
                # It runs from the loop's next turn: it is in in_flight before it ends.
                self.in_flight[msg] = loop.create_task(self._handle(js, prober, completions, msg))

    async def _handle(
        self, js: JetStreamContext, prober: Prober, completions: EachAcked, msg: Delivered
    ) -> None:
        settling = False
        try:
            try:
                req = lenient.decode(msg.data, msg.subject)
                if not isinstance(req, CheckRequested):
                    raise codec.DecodeError(
                        f"{msg.subject}: {req.__class__.__name__} is not a check request"
                    )
            except codec.DecodeError as exc:
                await self._dead_letter(js, msg, str(exc))
                return
            shown = req.url  # as the log shows it: its masks say what of it is secret
            try:
                if req.sealed is not None:
                    req = await self._open(js, req)
            except Exception as exc:
                # Every redelivery would fail alike: say so now, the tasks become unknown.
                completion = cannot_run(req, self.opts.name, self.opts.location, time.time(), exc)
            else:
                secrets = RequestSecrets.of(req, shown)
                delivery = deliveries(msg)
                runlog = None
                watched = req.group in self.watched
                began = time.time()
                self._held[msg.reply] = Run(msg, time.monotonic(), req, delivery, began)
                try:
                    if watched or delivery > 1:
                        await self._started(req, delivery, began)
                    else:
                        self._later.add(msg.reply)
                    if watched:
                        sink = self._live_sink(req.request)
                        runlog = RunLog(req.request, self.opts.name, sink, secrets)
                        await runlog.line(
                            "start",
                            f"agent {self.opts.name} at {self.opts.location} took it "
                            f"(delivery {delivery})",
                        )
                    completion = await prober.run(
                        req, self.opts.name, self.opts.location, runlog, secrets
                    )
                finally:
                    del self._held[msg.reply]
            await self._settling.acquire()
            settling = True
            self._slots.release()
            subject, data = publishable(req, completion, self.opts.name, self.opts.location)
            await completions.publish(subject, data, f"completed.{req.request}")
            await msg.ack()
            self.completed += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Leave the request unacked: it comes back after ack_wait.
            log.error(
                "request failed",
                exc=True,
                subject=msg.subject,
                error=str(exc) or type(exc).__name__,
            )
        finally:
            (self._settling if settling else self._slots).release()
            del self.in_flight[msg]

    def _say_if_running(self, reply: str) -> None:
        run = self._held.get(reply)
        if run is None:
            return  # answered meanwhile: its completion says when it started
        task = asyncio.create_task(self._started(run.req, run.delivery, run.began))
        self._saying.add(task)
        task.add_done_callback(self._saying.discard)

    async def _started(self, req: CheckRequested, delivery: int, at: float) -> None:
        """Say in the log that we run it (its status page shows who and since when). Published
        without waiting for JetStream's acknowledgement, and not retried: the run never waits
        for it; a start that is lost only leaves the request "queued" until it completes; one
        that lands after the completion changes nothing (a status only moves forward)."""
        event = CheckStarted(
            at=at,
            request=req.request,
            group=req.group,
            agent=self.opts.name,
            location=self.opts.location,
            delivery=delivery,
        )
        with contextlib.suppress(Exception):
            await self._nc.publish(
                subjects.started(self.opts.name, self.opts.location, req.group),
                codec.encode(event),
                headers={"Nats-Msg-Id": f"started.{req.request}.{delivery}"},
            )

    def _live_sink(self, request: str) -> Sink:
        """Log lines go to core NATS, not to the log: fire and forget, nobody needs to listen."""
        subject = subjects.live(request, self.opts.name)

        async def publish(line: LogLine) -> None:
            await self._nc.publish(subject, control.encode(line))

        return publish

    async def _open(self, js: JetStreamContext, req: CheckRequested) -> CheckRequested:
        """The request with its sealed secrets opened with the location's key: its own (in
        the credentials file), else the transient one the scheduler keeps in NATS."""
        if self._opener is None:
            self._opener = Opener(self._unsealer, js, self.opts.location)
        return await self._opener.open(req)

    async def _keep_alive(self) -> None:
        """Tell JetStream, for each request held for ``in_progress_every`` since it last heard,
        that it is in progress (so it is not redelivered while a slow site answers): one loop
        for all of them, not a timer per request (most take milliseconds)."""
        every = self.opts.in_progress_every
        while True:
            await asyncio.sleep(every / 2)
            now = time.monotonic()
            for reply, run in list(self._held.items()):
                if now - run.since >= every and reply in self._held:
                    run.since = now
                    with contextlib.suppress(Exception):
                        await run.msg.in_progress()

    async def _dead_letter(self, js: JetStreamContext, msg: Delivered, reason: str) -> None:
        meta = msg.metadata
        subject, data, headers = bus.deadletter_for(
            msg.data,
            meta.stream,
            meta.sequence.stream,
            msg.subject,
            f"agent:{self.opts.name}",
            reason,
            time.time(),
        )
        # Under our own id: an agent may publish nothing outside its own subjects.
        subject = subjects.agent_deadletter(self.opts.name)
        log.warning("undecodable request dead-lettered", subject=msg.subject, reason=reason)
        await bus.publish_until_acked(js, subject, data, headers["Nats-Msg-Id"])
        await msg.term()

    async def _heartbeats(self, js: JetStreamContext) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self._beat(js)
            await asyncio.sleep(self.opts.heartbeat)

    async def _beat(self, js: JetStreamContext, stopping: bool = False) -> None:
        in_flight, completed, processes = len(self.in_flight), self.completed, 1
        team = self.opts.team
        if team is not None:
            if not team.speaks:  # the first worker tells it for the whole agent
                team.tell(in_flight, completed)
                return
            in_flight, completed = team.totals(in_flight, completed)
            processes = team.size
        self._beats += 1
        event = AgentHeartbeat(
            at=time.time(),
            agent=self.opts.name,
            location=self.opts.location,
            version=__version__,
            concurrency=self.opts.concurrency * processes,
            in_flight=in_flight,
            completed=completed,
            started=self.started,
            stopping=stopping,
        )
        msg_id = f"heartbeat.{self.opts.name}.{self.started:.6f}.{self._beats}"
        await js.publish(
            subjects.heartbeat(self.opts.name, self.opts.location),
            codec.encode(event),
            headers={"Nats-Msg-Id": msg_id},
            timeout=5,
        )


#: Young-generation threshold of the agent's collector (CPython's default: 700). A request
#: allocates hundreds of objects that live until its answer: at 700, hundreds of requests in
#: flight are scanned again and again and promoted to older generations; most die by
#: reference count before a larger threshold is reached.
GC_YOUNG = 50_000


async def main(opts: AgentOptions) -> None:
    agent = Agent(opts)
    # What is imported and built at start lives as long as the process: kept out of every
    # collection (gc.freeze) instead of traversed by each full one.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop)
    await agent.run()
