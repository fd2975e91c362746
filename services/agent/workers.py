"""``tocsin agent --processes N``: one agent, N worker processes sharing its location's work
queue, so that one agent (one identity, one name) uses more than one core.

The command's process forks the workers before any event loop exists and then only
supervises them: SIGTERM or SIGINT is passed on to every worker (each finishes what it holds,
then exits); a worker that ends on its own (a crash, the OOM killer) ends them all, and the
command exits with its code, so whatever restarts the agent restarts it whole. A worker whose
supervisor died (SIGKILL) stops too. Each worker pulls, keeps alive and acks its own requests
exactly as a single agent does (``service.py``). The first worker speaks for the agent
(heartbeats, host observation); the others tell it their counts through shared memory, so
the heartbeat's concurrency, requests in flight and completed are the whole agent's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import traceback
from types import FrameType

from runtime import cliopts
from runtime.logs import Log
from services.agent.service import AgentOptions, main
from services.agent.team import Team

log = Log("tocsin.agent.workers")


def run(opts: AgentOptions, processes: int) -> int:
    team = Team(processes)
    parent = os.getpid()
    workers: dict[int, int] = {}
    for index in range(processes):
        pid = os.fork()
        if pid == 0:
            team.index = index
            mine = dataclasses.replace(opts, team=team, host=opts.host if index == 0 else None)
            os._exit(_work(mine, parent))
        workers[pid] = index
    return _supervise(workers)


def _work(opts: AgentOptions, parent: int) -> int:
    """One worker, in the forked process: its exit code."""
    try:
        code = cliopts.run(_work_until_orphaned(opts, parent))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


async def _work_until_orphaned(opts: AgentOptions, parent: int) -> None:
    async def watch() -> None:
        # Polled: a process is told of its parent's end only by its new parent id.
        while True:
            await asyncio.sleep(1)
            if os.getppid() != parent:
                break
        log.warning("the agent's supervisor is gone: stopping")
        os.kill(os.getpid(), signal.SIGTERM)  # as if asked: what is held is finished first

    watching = asyncio.create_task(watch())
    try:
        await main(opts)
    finally:
        watching.cancel()


def _supervise(workers: dict[int, int]) -> int:
    stopping = False
    code = 0

    def stop_all(_sig: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass  # ended already; waited for below

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    while workers:
        pid, status = os.waitpid(-1, 0)
        index = workers.pop(pid, None)
        if index is None:
            continue
        ended = os.waitstatus_to_exitcode(status)
        code = code or ended  # the first failure says why the agent ended
        if not stopping:
            log.error(
                "an agent worker ended on its own: stopping the others", worker=index, code=ended
            )
            code = code or 1
            stop_all()
    return code
