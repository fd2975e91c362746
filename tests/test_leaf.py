"""An agent behind a NAT: its site runs a leaf node that dials out to the hub; the agent
connects to the leaf only, with its own identity, and completes work held in the hub's
JetStream. Two real nats-server processes on loopback."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from events import codec, streams, subjects
from events.types import CheckCompleted
from runtime import bus
from runtime.embedded import NatsServer, free_port
from security.serverconf import Leafnodes, render_auth, render_leaf
from services.agent.service import Agent, AgentOptions
from tests.helpers import DemoTarget, wait_for
from tests.security_support import connect, request_event, start_secured


async def test_agent_behind_a_leaf_node_completes_work(
    tmp_path: Path, demo_target: DemoTarget
) -> None:
    password = secrets.token_urlsafe(24)
    leaf_port = free_port()
    hub = start_secured(
        tmp_path / "hub",
        {"paris-1": "eu", "nyc-1": "us"},
        leafnodes=Leafnodes(leaf_port, "site-eu", password, host="127.0.0.1"),
        js_domain="hub",
    )
    # The site's own server knows only the site's agents.
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "auth.conf").write_text(
        render_auth([i for i in hub.store.active() if i.location == "eu"])
    )
    (site_dir / "leaf.conf").write_text(
        render_leaf(f"nats-leaf://site-eu:{password}@127.0.0.1:{leaf_port}", "auth.conf")
    )
    leaf = NatsServer(site_dir / "nats", config=site_dir / "leaf.conf", jetstream=False).start()
    admin = await connect(hub.url, hub.security("admin"))
    try:
        await streams.ensure(admin.jetstream(), ["eu", "us"])
        subject, data, msg_id = request_event("eu", "g1", f"{demo_target.url}/healthy")
        await admin.jetstream().publish(subject, data, headers={"Nats-Msg-Id": msg_id})

        # An agent of another location is not known at this site at all.
        with pytest.raises(Exception):  # noqa: B017 - authorization violation at connect
            await connect(leaf.url, hub.security("nyc-1"))

        agent = Agent(
            AgentOptions(
                leaf.url,
                "paris-1",
                location="eu",
                heartbeat=0.5,
                security=hub.security("paris-1"),
                js_domain="hub",
            )
        )
        task = asyncio.create_task(agent.run())
        try:

            async def completed() -> list[bytes]:
                return [
                    m.data
                    async for m in bus.replay(
                        admin.jetstream(), subjects.completed("paris-1", "eu", "g1")
                    )
                ]

            done = await wait_for(completed, 30, what="a completion through the leaf node")
            ev = codec.decode(done[0], subjects.completed("paris-1", "eu", "g1"))
            assert isinstance(ev, CheckCompleted) and ev.outcomes[0].status == "success"
        finally:
            agent.stop()
            await asyncio.wait_for(task, 20)
        # The server applies acks asynchronously.
        await wait_for(lambda: _drained(admin), what="the work consumer drained")
    finally:
        await admin.close()
        leaf.stop()
        hub.server.stop()


async def _drained(nc: NATS) -> bool:
    info = await nc.jetstream().consumer_info(streams.WORK, "agents-eu")
    return info.num_pending == 0 and info.num_ack_pending == 0
