"""Least privilege against a real nats-server with authorization on: an agent can do its
job and nothing else, and a revoked agent is cut off by a configuration reload."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from events import codec, control, streams, subjects
from events.types import CheckCompleted, CheckStarted, HostObserved
from runtime import bus
from security import permissions, reload, transient
from security.client import ClientSecurity
from services.agent.host import HostOptions
from services.agent.service import Agent, AgentOptions
from services.agent.watched import Watched
from services.scheduler.leader import Lease
from services.web.runlogs import RunLogs
from tests.helpers import DemoTarget, flushed, wait_for
from tests.security_support import Recorder, SecuredBus, connect, request_event, start_secured


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[tuple[SecuredBus, Client]]:
    sb = start_secured(tmp_path, {"a1": "eu", "b1": "us"})
    admin = await connect(sb.url, sb.security("admin"))
    await streams.ensure(admin.jetstream(), ["eu", "us"])
    yield sb, admin
    await admin.close()
    sb.server.stop()


async def _events_on(admin: Client, subject: str) -> list[bytes]:
    return [m.data async for m in bus.replay(admin.jetstream(), subject)]


async def _has_done(lines: list[bytes]) -> bool:
    return any(control.decode_line(raw).step == "done" for raw in lines)


async def _web_has_done(runlogs: RunLogs, request: str) -> bool:
    return any(line.step == "done" for line in runlogs.lines.get(request, ()))


async def _run_agent(sb: SecuredBus, name: str, location: str) -> tuple[Agent, asyncio.Task[None]]:
    agent = Agent(
        AgentOptions(sb.url, name, location=location, heartbeat=0.5, security=sb.security(name))
    )
    return agent, asyncio.create_task(agent.run())


async def test_agent_with_least_privilege_completes_its_work(
    secured: tuple[SecuredBus, Client], demo_target: DemoTarget
) -> None:
    sb, admin = secured
    subject, data, msg_id = request_event("eu", "g1", f"{demo_target.url}/healthy")
    lines: list[bytes] = []

    async def line(msg: Any) -> None:
        lines.append(msg.data)

    await admin.subscribe(subjects.live("g1.eu.0", "a1"), cb=line)  # the run's live log
    await admin.jetstream().publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    # The web, with its own least privilege, follows the group: the agent, asking when it
    # starts, hears it (the web answers on the agent's reply subject) and tells the run.
    web = await connect(sb.url, sb.security("web"))
    runlogs = RunLogs()
    await runlogs.follow(web, "g1")
    await flushed(web)
    agent, task = await _run_agent(sb, "a1", "eu")
    try:
        done = await wait_for(
            lambda: _events_on(admin, subjects.completed("a1", "eu", "g1")),
            what="the completion of a1",
        )
        ev = codec.decode(done[0], subjects.completed("a1", "eu", "g1"))
        assert isinstance(ev, CheckCompleted) and ev.outcomes[0].status == "success"
        started_subject = subjects.started("a1", "eu", "g1")
        started = codec.decode((await _events_on(admin, started_subject))[0], started_subject)
        assert isinstance(started, CheckStarted) and started.delivery == 1
        await wait_for(lambda: _has_done(lines), what="the run's last log line")
        assert await wait_for(
            lambda: _events_on(admin, subjects.heartbeat("a1", "eu")), what="a heartbeat"
        )
        await wait_for(lambda: _web_has_done(runlogs, "g1.eu.0"), what="the web's last line")
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)
        await runlogs.close()
        await web.close()
    # Acked: nothing left in the location's work queue.
    info = await admin.jetstream().consumer_info(streams.WORK, "agents-eu")
    assert info.num_pending == 0 and info.num_ack_pending == 0


async def test_host_only_agent_with_least_privilege_reports_its_host(
    secured: tuple[SecuredBus, Client],
) -> None:
    sb, admin = secured
    agent = Agent(
        AgentOptions(
            sb.url,
            "a1",
            location="eu",
            security=sb.security("a1"),
            host=HostOptions(interval=0.5),
            host_only=True,
        )
    )
    task = asyncio.create_task(agent.run())
    try:
        seen = await wait_for(
            lambda: _events_on(admin, subjects.host_observed("a1", "eu")), what="a1's host figures"
        )
        ev = codec.decode(seen[0], subjects.host_observed("a1", "eu"))
        assert isinstance(ev, HostObserved) and ev.agent == "a1" and ev.filesystems
    finally:
        agent.stop()
        await asyncio.wait_for(task, 20)
    # Host-only: it never bound the location's work queue.
    info = await admin.jetstream().consumer_info(streams.WORK, "agents-eu")
    assert info.num_waiting == 0 and info.delivered.consumer_seq == 0


@pytest.mark.parametrize(
    "subject",
    [
        subjects.requested("eu", "g1"),  # a check request
        subjects.CONFIG_APPLIED,  # configuration
        subjects.judged("g1"),  # a judgement
        subjects.completed("b1", "us", "g1"),  # another agent's completion
        subjects.heartbeat("b1", "us"),  # another agent's heartbeat
        subjects.host_observed("b1", "us"),  # another agent's host figures
        subjects.started("b1", "us", "g1"),  # another agent's start
        # Its own name at another location: an answer to another location's requests.
        "tocsin.check.completed.a1.us.g1",
        "tocsin.check.started.a1.us.g1",
        "tocsin.agent.heartbeat.a1.us",
        "tocsin.host.observed.a1.us",
        # The subjects of 0.1.0, without the location (still read in old logs).
        "tocsin.check.completed.a1.g1",
        "tocsin.agent.heartbeat.a1",
        "tocsin_live.g1.us.1.a1",  # a run log of another location
        "tocsin_live.g1.eu.1.b1",  # a run log under another agent's name
        "tocsin_live.g1.eu.1",  # a run log without its agent's name
        subjects.WATCHING,  # telling the other agents which runs are watched
        subjects.deadletter("max_deliver"),  # a dead letter not its own
        "$JS.API.CONSUMER.MSG.NEXT.WORK.agents-us",  # another location's work
        "$JS.ACK.WORK.agents-us.1.1.1.1.1.1",  # acking another location's work
        "$JS.API.STREAM.DELETE.EVENTS",  # destroying the log
    ],
)
async def test_agent_cannot_publish(secured: tuple[SecuredBus, Client], subject: str) -> None:
    sb, admin = secured
    rec = Recorder()
    nc = await connect(sb.url, sb.security("a1"), rec)
    try:
        before = (await admin.jetstream().stream_info(streams.EVENTS)).state.messages
        await nc.publish(subject, b'{"type": "forged"}')
        await flushed(nc)
        await rec.refused(subject)
        assert (await admin.jetstream().stream_info(streams.EVENTS)).state.messages == before
    finally:
        await nc.close()


@pytest.mark.parametrize(
    "subject",
    [
        subjects.ALL,  # the event log as it is written
        subjects.REQUESTED_ALL,  # every location's requests
        "_INBOX.>",  # everybody's replies
        "_INBOX.agent.b1.>",  # another agent's replies (its pulled requests)
        "$JS.ACK.>",
    ],
)
async def test_agent_cannot_subscribe(secured: tuple[SecuredBus, Client], subject: str) -> None:
    sb, _ = secured
    rec = Recorder()
    nc = await connect(sb.url, sb.security("a1"), rec)
    try:
        await nc.subscribe(subject)
        await flushed(nc)
        await rec.refused(subject)
    finally:
        await nc.close()


async def test_agent_cannot_read_the_event_log_through_jetstream(
    secured: tuple[SecuredBus, Client],
) -> None:
    sb, admin = secured
    await admin.jetstream().publish(subjects.CONFIG_APPLIED, b"{}")
    rec = Recorder()
    nc = await connect(sb.url, sb.security("a1"), rec)
    js = nc.jetstream(timeout=1)
    try:
        # Creating a consumer on EVENTS, fetching a message directly, or by the stream API.
        with pytest.raises(Exception):  # noqa: B017 - the refusal surfaces as a timeout
            await js.pull_subscribe(subjects.ALL, stream=streams.EVENTS)
        await rec.refused("$JS.API.CONSUMER.CREATE.EVENTS")
        with pytest.raises(Exception):  # noqa: B017
            await js.get_msg(streams.EVENTS, 1, direct=True)
        await rec.refused("$JS.API.DIRECT.GET.EVENTS")
        with pytest.raises(Exception):  # noqa: B017
            await js.get_msg(streams.EVENTS, 1)
        await rec.refused("$JS.API.STREAM.MSG.GET.EVENTS")
        projector = await js.pull_subscribe_bind(durable=streams.PROJECTOR, stream=streams.EVENTS)
        with pytest.raises(Exception):  # noqa: B017
            await projector.fetch(1, timeout=1)
        await rec.refused(f"$JS.API.CONSUMER.MSG.NEXT.EVENTS.{streams.PROJECTOR}")
    finally:
        await nc.close()


async def test_unknown_key_is_refused(secured: tuple[SecuredBus, Client], tmp_path: Path) -> None:
    sb, _ = secured
    with pytest.raises(Exception):  # noqa: B017 - authorization violation at connect
        await nats.connect(
            sb.url, max_reconnect_attempts=0, allow_reconnect=False, connect_timeout=3
        )


async def test_revoked_agent_is_cut_off_by_a_reload(secured: tuple[SecuredBus, Client]) -> None:
    sb, _ = secured
    rec = Recorder()
    nc = await connect(
        sb.url,
        sb.security("b1"),
        rec,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    creds = sb.store.creds_path("b1").read_text()
    sb.store.revoke("b1")
    assert reload.reload(sb.store.dir) == sb.server.proc.pid  # type: ignore[union-attr]
    await wait_for(lambda: _async(rec.disconnects > 0), timeout=15, what="b1 disconnected")
    await asyncio.sleep(1)
    assert not nc.is_connected  # every reconnect attempt is refused
    with contextlib.suppress(Exception):
        await nc.close()
    # Its old credentials cannot open a new connection either.
    (sb.store.dir / "old.creds").write_text(creds)

    with pytest.raises(Exception):  # noqa: B017
        await connect(sb.url, ClientSecurity(creds=str(sb.store.dir / "old.creds")))
    # The others were not disturbed.
    assert sb.store.find("a1") is not None
    nc2 = await connect(sb.url, sb.security("a1"))
    await nc2.close()


async def _async(value: object) -> object:
    return value


async def test_the_scheduler_deletes_messages_of_work_only(
    secured: tuple[SecuredBus, Client],
) -> None:
    """It removes dead-lettered requests from WORK (refused, each refusal cost it a 5 s
    timeout and left the request there for good); no message of any other stream, among
    them the log's."""
    sb, admin = secured
    js = admin.jetstream()
    await Lease(js).bucket()
    await transient.bucket(js, create=True)
    every = {s.config.name for s in await js.streams_info()}
    assert every - {streams.WORK} == set(permissions.KEPT_STREAMS)
    subject, data, msg_id = request_event("eu", "g1", "http://127.0.0.1:9/")
    logged = await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})

    async def queued() -> int:
        return (await js.stream_info(streams.WORK)).state.last_seq

    queued_seq = await wait_for(queued, what="the request sourced into WORK")
    rec = Recorder()
    nc = await connect(sb.url, sb.security("scheduler"), rec)
    try:
        assert await nc.jetstream().delete_msg(streams.WORK, queued_seq)
        with pytest.raises(Exception):  # noqa: B017  # refused, whatever nats-py calls it
            await nc.jetstream(timeout=1).delete_msg(streams.EVENTS, logged.seq)
        await rec.refused(f"$JS.API.STREAM.MSG.DELETE.{streams.EVENTS}")
        assert (await js.get_msg(streams.EVENTS, logged.seq)).data == data
    finally:
        await nc.close()


#: Subjects of the log an answer must never land on, whatever reply subject it was handed
#: (JetStream keeps whatever is published under ``tocsin.``).
INTO_THE_LOG = [
    pytest.param(subjects.CONFIG_APPLIED, id="the-configuration"),
    pytest.param(subjects.judged("g1"), id="a-judgement"),
    pytest.param(subjects.pinged("g1"), id="a-ping-the-web-may-record"),
    pytest.param(subjects.ACKNOWLEDGED, id="an-acknowledgement-the-web-may-record"),
]


async def _nothing_logged_since(admin: Client, last_seq: int) -> None:
    """Nothing reached the log after ``last_seq``: a mark published now is the next message.
    (The stream takes what it captures in order: whatever was published before the mark and
    captured is stored before it.)"""
    ack = await admin.jetstream().publish(subjects.deadletter("test-mark"), b"{}")
    assert ack.seq == last_seq + 1


@pytest.mark.parametrize("reply", INTO_THE_LOG)
async def test_an_agents_question_gets_no_answer_into_the_log(
    secured: tuple[SecuredBus, Client], reply: str
) -> None:
    """An agent asks which runs are followed, handing the web a subject of the log as the
    subject to answer on: the web answers nowhere but in an agent's inbox."""
    sb, admin = secured
    web = await connect(sb.url, sb.security("web"))
    agent = await connect(sb.url, sb.security("a1"))
    runlogs = RunLogs()
    try:
        await runlogs.follow(web, "g1")
        await flushed(web)
        last = (await admin.jetstream().stream_info(streams.EVENTS)).state.last_seq
        await agent.publish(subjects.WATCHING_ASK, b"", reply=reply)
        # Then the question as an agent asks it: once it is answered, the one before was
        # handled (one subscription takes them in order).
        watched = Watched()
        await watched.follow(agent)
        assert "g1" in watched and watched.heard_any
        await _nothing_logged_since(admin, last)
        assert runlogs.refused == 1
    finally:
        await runlogs.close()
        await agent.close()
        await web.close()


@pytest.mark.parametrize(
    "reply",
    [
        *INTO_THE_LOG[:2],
        pytest.param(subjects.requested("eu", "g1"), id="a-request"),
        pytest.param(subjects.completed("a1", "eu", "g1"), id="a-completion"),
    ],
)
async def test_the_web_cannot_answer_into_the_log(
    secured: tuple[SecuredBus, Client], reply: str
) -> None:
    """Whatever its code answers, the web's permissions refuse an answer anywhere but in
    agents' inboxes and its own subjects: no ``allow_responses`` (which admits any reply
    subject handed to it). On its own subjects (pings, acknowledgements) only its code refuses:
    ``test_an_agents_question_gets_no_answer_into_the_log``."""
    sb, admin = secured
    rec = Recorder()
    web = await connect(sb.url, sb.security("web"), rec)
    agent = await connect(sb.url, sb.security("a1"))

    async def blindly(msg: Any) -> None:
        await msg.respond(b'{"groups": {}}')

    try:
        await web.subscribe(subjects.WATCHING_ASK, cb=blindly)
        await flushed(web)
        last = (await admin.jetstream().stream_info(streams.EVENTS)).state.last_seq
        await agent.publish(subjects.WATCHING_ASK, b"", reply=reply)
        await flushed(agent)
        await rec.refused(reply)
        await _nothing_logged_since(admin, last)
    finally:
        await agent.close()
        await web.close()


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("_INBOX.agent.a1.abc", id="where-an-agents-pulled-requests-arrive"),
        pytest.param("_INBOX.agent.a1.abc.def", id="where-an-agents-replies-arrive"),
        pytest.param("tocsin_live.g1.eu.1.a1", id="a-run-log-line"),
        pytest.param(subjects.CONFIG_APPLIED, id="the-configuration"),
    ],
)
async def test_web_cannot_publish(secured: tuple[SecuredBus, Client], subject: str) -> None:
    sb, _ = secured
    rec = Recorder()
    nc = await connect(sb.url, sb.security("web"), rec)
    try:
        await nc.publish(subject, b"{}")
        await flushed(nc)
        await rec.refused(subject)
    finally:
        await nc.close()
