"""The operator's limits of the event log (how long, how much it keeps) survive every service
start: Tocsin sets what it needs of its streams, never their size."""

from __future__ import annotations

import dataclasses

import nats

from events import streams
from runtime.embedded import NatsServer


async def test_a_restart_keeps_the_operators_retention(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await streams.ensure(js, ["default"], streams.Tuning())
        found = (await js.stream_info(streams.EVENTS)).config
        limits = {"max_age": 604800.0, "max_bytes": 2_000_000_000, "max_msgs": 10_000_000}
        await js.update_stream(dataclasses.replace(found, **limits))
        # A scheduler starting (again) with its tuning, a window changed since.
        await streams.ensure(js, ["default"], streams.Tuning(duplicate_window=60.0))
        kept = (await js.stream_info(streams.EVENTS)).config
        assert {k: getattr(kept, k) for k in limits} == limits
        assert (kept.duplicate_window, kept.deny_delete) == (60.0, True)
        # WORK's age is Tocsin's own (the tasks in force): still set from the tuning.
        await streams.ensure(js, ["default"], streams.Tuning(work_max_age=900.0))
        assert (await js.stream_info(streams.WORK)).config.max_age == 900.0
    finally:
        await nc.close()
