"""Waiting that a stop or a bound can end, even on work that never ends by itself (nats-py's
TLS handshake after a failure, nats.py issue 718)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """The service was asked to stop (SIGTERM) before it reached NATS: it ends as asked."""


async def unless_stopped(work: Awaitable[T], stopping: asyncio.Event | None) -> T:
    """``work``'s result, or ``Stopped`` (``work`` cancelled) once ``stopping`` is set."""
    if stopping is None:
        return await work
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if task.done():
        return task.result()
    task.cancel()  # not awaited: a TLS handshake nats-py hangs in may never end
    raise Stopped


async def within(work: Awaitable[T], seconds: float) -> T:
    """``work``'s result, or ``TimeoutError`` after ``seconds``, ``work`` cancelled but not
    waited for (``asyncio.wait_for`` waits until it ends, which nats-py's may never)."""
    task = asyncio.ensure_future(work)
    await asyncio.wait({task}, timeout=seconds)
    if task.done():
        return task.result()
    task.cancel()
    raise TimeoutError
