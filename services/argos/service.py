"""Argos agents as Tocsin agents: ``GET /api/tasks`` and ``POST /api/results`` of Argos 0.10.3.

Argos users keep their deployed agents while they migrate: point an agent at this
service (``argos agent http://HOST:PORT TOKEN``; the agent calls ``{server}/api/tasks``
and ``{server}/api/results``) and it works a location's share of the WORK queue,
as a Tocsin agent does. Each request handed out is leased: kept in progress while
the agent works, acked only once its completion is in the log, given back (nak) if
no result came in time (``protocol.lease_deadline``: by the middle of the scheduler's budget
for it, at most ``--lease`` or ``recurring_tasks.max_lock_seconds``). A result counts only
from the agent its task was handed to. Tokens are ``service.secrets`` of the configuration
file, as in Argos.

This runs apart from the web service, whose ``/api/tasks`` lists tasks for people:
behind one reverse proxy, route a prefix (``/argos/``) here and give agents that URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import uvicorn
from fastapi import Body, Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from nats.aio.msg import Msg

from checks.masking import NO_SECRETS, RequestSecrets
from checks.probe import cannot_run
from checks.request import give_up_after
from configuration.config import ConfigError, parse
from events import codec, streams, subjects
from events.types import AgentHeartbeat, CheckRequested, CheckSpec, TaskDef
from runtime import bus
from runtime.logs import Log
from security.client import ClientSecurity
from security.sealing import Opener
from services.argos import translate
from services.argos.guard import TokenFirst
from services.argos.polls import Poller
from services.argos.protocol import DEFAULT_LEASE, AgentResult, TaskIds, lease_deadline

log = Log("tocsin.argos")
#: The gateway's own name, under which it records what it cannot decode.
GATEWAY = "argos"
_NOT_TOKEN = re.compile(r"[^A-Za-z0-9_-]+")
# At module level: the routes' annotations are resolved in this module's globals.
_BEARER = HTTPBearer()


@dataclass
class GatewayOptions:
    nats_url: str
    config: str
    location: str = "default"
    host: str = "127.0.0.1"
    port: int = 8300
    #: Seconds a request stays with an Argos agent at most before it is given back; None:
    #: the configuration's ``recurring_tasks.max_lock_seconds``, else Argos's 100.
    lease: float | None = None
    keep_alive: float = 10.0
    security: ClientSecurity = field(default_factory=ClientSecurity.from_env)
    #: The hub's JetStream domain, behind a leaf node.
    js_domain: str | None = None


@dataclass
class Lease:
    msg: Msg
    req: CheckRequested
    agent: str
    started: float
    #: When it is given back if no result came (``protocol.lease_deadline``).
    deadline: float
    #: Argos task id → the check it stands for.
    ids: dict[int, CheckSpec]
    results: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    ticker: asyncio.Task[None] | None = None
    #: Masked in the completion: an Argos agent's error texts may quote them.
    secrets: RequestSecrets = NO_SECRETS


def agent_name(agent_id: str) -> str:
    """The Tocsin agent name (a subject token) of an Argos agent id (often a host name)."""
    return "argos-" + (_NOT_TOKEN.sub("-", agent_id).strip("-")[:58] or "agent")


class Gateway:
    def __init__(self, opts: GatewayOptions) -> None:
        subjects.check_token(opts.location, "location")
        self.opts = opts
        self.tokens: set[str] = set()
        #: The configured tasks, for the scheduler's budget of each request (its frequency).
        self.tasks: dict[str, TaskDef] = {}
        self.lease = DEFAULT_LEASE
        self._take(parse(opts.config))
        self.leases: dict[str, Lease] = {}
        self.by_id: dict[int, str] = {}
        self._ids = TaskIds()
        self._beats: dict[str, float] = {}
        self._completed: dict[str, int] = {}
        self.started = time.time()
        self.stopping = asyncio.Event()
        self._unsealer = opts.security.unsealer()
        self._opener: Opener | None = None  # with the NATS connection (run)
        self.js: Any = None
        self.poller: Poller | None = None
        self.app = self._app()
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=opts.host,
                port=opts.port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )

    def stop(self) -> None:
        self.stopping.set()

    def _take(self, config: Any) -> None:
        """The file's tokens, tasks and lease (at the start, and on SIGHUP)."""
        self.tokens = set(config.agent_tokens)
        self.tasks = config.tasks
        self.lease = self.opts.lease or config.recurring.get("max_lock_seconds") or DEFAULT_LEASE
        if not self.tokens:
            log.warning(
                "no service.secrets in the configuration: every Argos agent is refused (401)",
                config=self.opts.config,
            )

    def reload(self) -> None:
        """SIGHUP: read the file again for its tokens (and tasks, lease); a file that does
        not read keeps what was read before."""
        try:
            self._take(parse(self.opts.config))
        except (ConfigError, OSError) as exc:
            log.error("configuration not reloaded", config=self.opts.config, error=str(exc))
            return
        log.info("configuration reloaded", tokens=len(self.tokens))

    async def run(self) -> None:
        nc = await bus.connect(
            self.opts.nats_url, "argos", self.stopping, **self.opts.security.connect_options()
        )
        self.js = nc.jetstream(domain=self.opts.js_domain)
        self._opener = Opener(self._unsealer, self.js, self.opts.location)
        durable = streams.agent_consumer_name(self.opts.location)
        self.poller = Poller(nc, streams.WORK, durable, self.opts.js_domain)
        # Bound here, not by uvicorn: it would sys.exit() inside a task on a taken port.
        listening = socket.create_server((self.opts.host, self.opts.port))
        serving = asyncio.create_task(self.server.serve(sockets=[listening]))
        sweeping = asyncio.create_task(self._sweep())
        try:
            await self.stopping.wait()
        finally:
            self.server.should_exit = True
            sweeping.cancel()
            with contextlib.suppress(Exception):
                await serving
            listening.close()
            for lease in list(self.leases.values()):
                await self._give_back(lease, "the gateway stops")
            await bus.close(nc)

    # --- the two routes -------------------------------------------------------------------

    def _app(self) -> FastAPI:
        app = FastAPI(title="Tocsin for Argos agents", docs_url=None, redoc_url=None)

        def token(cred: Annotated[HTTPAuthorizationCredentials, Depends(_BEARER)]) -> None:
            if cred.credentials not in self.tokens:
                raise HTTPException(status_code=401, detail="Unauthorized")

        @app.get("/api/tasks", dependencies=[Depends(token)])
        async def tasks(
            request: Request, limit: int = 10, agent_id: str | None = None
        ) -> list[dict[str, Any]]:
            agent = agent_name(agent_id or (request.client.host if request.client else ""))
            await self._heartbeat(agent, request.headers.get("user-agent", "argos agent"))
            handed = await self.hand_out(agent, max(1, min(limit, 1000)))
            if handed and await request.is_disconnected():
                # Its client gave up waiting (a timeout): nobody would work these.
                for rid in dict.fromkeys(self.by_id[t["id"]] for t in handed):
                    await self._give_back(self.leases[rid], "the agent left before the answer")
                return []
            return handed

        @app.post("/api/results", status_code=201, dependencies=[Depends(token)])
        async def results(
            request: Request,
            body: Annotated[list[AgentResult], Body()],
            agent_id: str | None = None,
        ) -> dict[str, list[int]]:
            agent = agent_name(agent_id or (request.client.host if request.client else ""))
            return {"result_ids": await self.take_results(agent, body)}

        # A class, not an instance: FastAPI builds its middleware stack on the first request.
        app.add_middleware(TokenFirst, tokens=lambda: self.tokens)
        return app

    async def hand_out(self, agent: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` requests of the location, as Argos tasks (one per check): a request
        is Argos's task group, and Argos's ``limit`` counts task groups."""
        if self.poller is None:
            return []
        msgs = await self.poller.take_now(limit)
        out: list[dict[str, Any]] = []
        for msg in msgs:
            decoded = await self._decode(msg)
            if decoded is None:
                continue
            req, secrets = decoded
            now = time.time()
            lease = Lease(msg, req, agent, now, self._deadline(req, now), {}, secrets=secrets)
            if not translate.runnable(req):
                await self._complete(lease)
                continue
            for spec in req.checks:
                if spec.kind in translate.ARGOS_CHECKS:
                    task_id = self._ids.next()
                    lease.ids[task_id] = spec
                    self.by_id[task_id] = req.request
                    out.append(translate.argos_task(task_id, req, spec, agent, now))
            if not lease.ids:
                await self._complete(lease)
                continue
            lease.ticker = asyncio.create_task(self._keep_alive(msg))
            self.leases[req.request] = lease
        return out

    def _deadline(self, req: CheckRequested, now: float) -> float:
        tasks = [self.tasks[s.task] for s in req.checks if s.task in self.tasks]
        # A task this configuration does not know (applied since): the least budget there is.
        budget = give_up_after(tasks) if tasks else 2 * req.timeout
        return lease_deadline(now, req.due, budget, req.timeout, self.lease)

    async def take_results(self, agent: str, results: list[AgentResult]) -> list[int]:
        """Record each result of a task handed to ``agent``; a request whose every check has
        one is completed in the log. Others (given back, of another agent, of a gateway before
        a restart) are left out of the answer, as Argos leaves out tasks it does not know."""
        accepted: list[int] = []
        done: list[Lease] = []
        unknown: list[int] = []
        for result in results:
            task_id = result.task_id
            lease = self.leases.get(self.by_id.get(task_id, ""))
            if lease is None or lease.agent != agent or task_id not in lease.ids:
                unknown.append(task_id)
                continue
            del self.by_id[task_id]
            spec = lease.ids[task_id]
            lease.results[spec.task] = (result.status, result.context_dict())
            accepted.append(task_id)
            if len(lease.results) == len(lease.ids) and lease not in done:
                done.append(lease)
        if unknown:  # one line a post, however many: a post may hold thousands
            log.warning(
                "results for no task handed to this agent",
                agent=agent,
                count=len(unknown),
                task_ids=unknown[:5],
            )
        for lease in done:
            await self._complete(lease)
        return accepted

    # --- leases ---------------------------------------------------------------------------

    async def _complete(self, lease: Lease) -> None:
        req = lease.req
        self._drop(lease)
        event = translate.completion(
            req,
            lease.results,
            lease.agent,
            self.opts.location,
            lease.started,
            time.time(),
            lease.secrets,
        )
        subject = subjects.completed(lease.agent, self.opts.location, req.group)
        try:
            # An Argos agent's results (its error texts, its numbers) make the completion: one
            # the contract refuses would be a dead letter, its tasks judged by nobody.
            data = codec.encode_admitted(event, subject)
        except codec.DecodeError as exc:
            log.warning("results refused by the event contract", agent=lease.agent, error=str(exc))
            failed = cannot_run(req, lease.agent, self.opts.location, lease.started, exc)
            data = codec.encode(failed)
        try:
            await bus.publish_until_acked(self.js, subject, data, f"completed.{req.request}")
            await lease.msg.ack()
            self._completed[lease.agent] = self._completed.get(lease.agent, 0) + 1
        except Exception as exc:
            # Unacked, the request comes back after ack_wait: nothing is lost.
            log.error("completion not recorded", request=req.request, error=str(exc))

    def _drop(self, lease: Lease) -> None:
        self.leases.pop(lease.req.request, None)
        for task_id in lease.ids:
            self.by_id.pop(task_id, None)
        if lease.ticker is not None:
            lease.ticker.cancel()

    async def _give_back(self, lease: Lease, why: str) -> None:
        self._drop(lease)
        log.warning("request given back", request=lease.req.request, agent=lease.agent, why=why)
        with contextlib.suppress(Exception):
            await lease.msg.nak()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1)
            now = time.time()
            for lease in list(self.leases.values()):
                if now > lease.deadline:
                    held = lease.deadline - lease.started
                    await self._give_back(lease, f"no result within {held:.0f}s")

    async def _keep_alive(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(self.opts.keep_alive)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _decode(self, msg: Msg) -> tuple[CheckRequested, RequestSecrets] | None:
        """The request, opened, and its secrets; None when it is none of ours to hand out."""
        try:
            req = codec.decode(msg.data, msg.subject)
            if not isinstance(req, CheckRequested):
                raise codec.DecodeError(
                    f"{msg.subject}: {req.__class__.__name__} is not a check request"
                )
        except codec.DecodeError as exc:
            meta = msg.metadata
            _, data, headers = bus.deadletter_for(
                msg.data,
                meta.stream,
                meta.sequence.stream,
                msg.subject,
                f"agent:{GATEWAY}",
                str(exc),
                time.time(),
            )
            log.warning("undecodable request dead-lettered", subject=msg.subject)
            await bus.publish_until_acked(
                self.js, subjects.agent_deadletter(GATEWAY), data, headers["Nats-Msg-Id"]
            )
            await msg.term()
            return None
        shown = req.url  # as the log shows it: its masks say what of it is secret
        if req.sealed is not None:
            try:
                assert self._opener is not None  # set in run, before any pull
                req = await self._opener.open(req)
            except Exception as exc:
                log.error("sealed request this gateway cannot open", error=str(exc))
                await msg.nak(delay=30)
                return None
        return req, RequestSecrets.of(req, shown)

    async def _heartbeat(self, agent: str, version: str) -> None:
        """An Argos agent asking for work is alive: it shows on the agents page and keeps
        the no-agent alert quiet, as a Tocsin agent's heartbeat does (at most every 10 s)."""
        now = time.time()
        if now - self._beats.get(agent, 0) < 10:
            return
        self._beats[agent] = now
        held = sum(len(lease.ids) for lease in self.leases.values() if lease.agent == agent)
        event = AgentHeartbeat(
            at=now,
            agent=agent,
            location=self.opts.location,
            version=version[:64],
            concurrency=0,
            in_flight=held,
            completed=self._completed.get(agent, 0),
            started=self.started,
        )
        with contextlib.suppress(Exception):
            await self.js.publish(
                subjects.heartbeat(agent, self.opts.location),
                codec.encode(event),
                headers={"Nats-Msg-Id": f"heartbeat.{agent}.{now:.6f}"},
                timeout=5,
            )
