"""A projector that kills itself (SIGKILL) right after a commit, before its ack, by chance.

No outside kill can aim at that instant, so the fault test runs this subclass as its
projector process: ``python -m tests.faults.crashing NATS_URL DATABASE_URL CHANCE``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys

from nats.aio.msg import Msg

from services.projector.service import Projector, ProjectorOptions


class CrashingProjector(Projector):
    def __init__(self, opts: ProjectorOptions, chance: float) -> None:
        super().__init__(opts)
        self.chance = chance

    async def acknowledge(self, msgs: list[Msg]) -> None:
        if random.random() < self.chance:
            os.kill(os.getpid(), signal.SIGKILL)
        await super().acknowledge(msgs)


if __name__ == "__main__":
    nats_url, database_url, chance = sys.argv[1], sys.argv[2], float(sys.argv[3])
    asyncio.run(CrashingProjector(ProjectorOptions(nats_url, database_url), chance).run())
