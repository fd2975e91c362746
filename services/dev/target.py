"""A small website Tocsin serves itself on loopback, so a newcomer sees real verdicts offline.

``/healthy`` and ``/api/status`` answer well, ``/broken`` answers 500,
``/slow`` takes its time, ``/wrong-body`` answers 200 with the wrong text.
``POST /_control/<name>`` with ``status``, ``body`` or ``delay`` changes how an
endpoint answers, to watch a verdict change live. For the monitors beyond HTTP
(docs/monitors.md) it also echoes on a WebSocket (``/ws``) and plays a domain
registry's RDAP server (``/rdap/domain/<name>``: registered for a year more).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import WSMsgType, web

RDAP_DAYS_LEFT = 365


@dataclass
class Behaviour:
    status: int = 200
    body: str = "ok"
    delay: float = 0.0
    content_type: str = "text/plain"


BEHAVIOURS = web.AppKey("behaviours", dict)


def default_behaviours() -> dict[str, Behaviour]:
    return {
        "healthy": Behaviour(200, "Everything is fine here."),
        "api/status": Behaviour(
            200, '{"status": "up", "version": "1.0"}', content_type="application/json"
        ),
        "broken": Behaviour(500, "Internal Server Error"),
        "slow": Behaviour(200, "Sorry for the wait.", delay=1.5),
        "wrong-body": Behaviour(200, "This page moved somewhere else."),
    }


def make_app() -> web.Application:
    behaviours = default_behaviours()

    async def serve(request: web.Request) -> web.Response:
        b = behaviours.get(request.match_info["name"])
        if b is None:
            return web.Response(status=404, text="not found")
        if b.delay:
            await asyncio.sleep(b.delay)
        return web.Response(status=b.status, text=b.body, content_type=b.content_type)

    async def control(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        form = await request.post()
        b = behaviours.setdefault(name, Behaviour())
        if "status" in form:
            b.status = int(str(form["status"]))
        if "body" in form:
            b.body = str(form["body"])
        if "delay" in form:
            b.delay = float(str(form["delay"]))
        return web.json_response({"name": name, "status": b.status, "delay": b.delay})

    app = web.Application()
    app[BEHAVIOURS] = behaviours
    app.router.add_get("/ws", echo)
    app.router.add_get("/rdap/domain/{domain}", rdap)
    app.router.add_post("/_control/{name:.+}", control)
    app.router.add_route("*", "/{name:.+}", serve)
    return app


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(message.data)
    return ws


async def rdap(request: web.Request) -> web.Response:
    expires = datetime.fromtimestamp(time.time() + RDAP_DAYS_LEFT * 86400, UTC)
    record = {
        "objectClassName": "domain",
        "ldhName": request.match_info["domain"],
        "status": ["active"],
        "events": [{"eventAction": "expiration", "eventDate": expires.isoformat()}],
    }
    return web.json_response(record, content_type="application/rdap+json")


async def serve_forever(host: str, port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
