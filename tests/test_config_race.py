"""Two applies racing make one history: the configuration in force is exactly one of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats

from configuration import config as configuration
from configuration.inforce import apply_config, in_force
from configuration.redaction import redact
from events import streams
from tests.helpers import site_config


def _cfg(tmp_path: Path, name: str, paths: list[str]) -> configuration.Config:
    path = tmp_path / f"{name}.yaml"
    path.write_text(site_config("http://127.0.0.1:9", {p: ["status-is: 200"] for p in paths}))
    return configuration.parse(str(path))


async def test_racing_applies_resolve_to_one_history(nats_server, tmp_path: Path):
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await streams.ensure(js, [])
    try:
        for round_ in range(5):
            a = _cfg(tmp_path, f"a{round_}", [f"a{round_}", "shared"])
            b = _cfg(tmp_path, f"b{round_}", [f"b{round_}", "shared"])
            await asyncio.gather(apply_config(js, a, "alice"), apply_config(js, b, "bob"))
            now = (await in_force(js)).tasks
            shown = [{k: redact(t, c.secrets) for k, t in c.tasks.items()} for c in (a, b)]
            # Without the expected last sequence, both diffs of the same state land and the
            # log holds a mix of the two: a{n} and b{n} both in force.
            assert now in shown, sorted(t.url for t in now.values())
    finally:
        await nc.close()
