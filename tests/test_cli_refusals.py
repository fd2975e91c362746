"""What an operator's command would write and the log's contract refuses is said by the
command (exit 2, the contract's reason), never published for every reader to dead-letter."""

from __future__ import annotations

import os
import subprocess
import sys

import nats
import pytest

from events import streams
from runtime import bus


def _tocsin(nats_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args, "--nats-url", nats_url],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        pytest.param(
            ["ack", "t" * 300, "--reason", "on it"],
            "incident.acknowledged: Expected `str` of length <= 256 - at `$.task`",
            id="ack-task-name-too-long",
        ),
        pytest.param(
            # Lasting into the future: an already past one is refused before (below).
            ["silence", "add", "--for", "60y", "--start", "1990-01-01T00:00:00+00:00"],
            "silence.added: Expected `float` >= 946684800.0 - at `$.starts`",
            id="silence-starting-before-2000",
        ),
        pytest.param(
            ["silence", "add", "--for", "1m", "--start", "2020-01-01T00:00:00+00:00"],
            "the silence would end 2020-01-01 00:01 UTC, already past",
            id="silence-already-over",
        ),
        pytest.param(
            [
                *("incident", "open", "public", "--title", "Slow", "--message", "m"),
                *("--component", "API", "--component", "API"),
            ],
            "status.incident: components: component 'API' is listed twice",
            id="incident-naming-a-component-twice",
        ),
    ],
)
async def test_a_command_says_what_the_log_would_refuse_and_publishes_nothing(
    nats_server, args: list[str], said: str
):
    nc = await nats.connect(nats_server.url)
    try:
        await streams.ensure(nc.jetstream(), ["default"])
        done = _tocsin(nats_server.url, *args)
        assert done.returncode == 2, done.stderr
        assert said in done.stderr and "Traceback" not in done.stderr
        assert [m async for m in bus.replay(nc.jetstream(), "tocsin.>")] == []
    finally:
        await nc.close()
