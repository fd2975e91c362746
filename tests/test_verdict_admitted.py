"""The scheduler's verdict on an admitted completion is itself admitted, or not published:
an agent's details make its reasons, and a verdict every reader dead-letters would leave the
tasks judged by nobody. The completion is then the dead letter, saying why."""

from __future__ import annotations

from pathlib import Path

from events.types import CheckOutcome, CheckRequested
from tests.helpers import answer_refused, site_config, write_config

#: Checks of one path: one request group of this many tasks.
CHECKS = 1000


async def test_a_verdict_too_large_for_an_event_makes_its_completion_a_dead_letter(
    nats_server, database_url, demo_target, tmp_path: Path
):
    checks = [f"body-contains: 'word {i}'" for i in range(CHECKS)]
    config = write_config(tmp_path / "c.yaml", site_config(demo_target.url, {"x": checks}, "5s"))

    def long_failures(req: CheckRequested) -> list[CheckOutcome]:
        # Each detail as long as fits: the completion is just within an event, its verdict
        # (each judgement a few bytes longer than its outcome) is not.
        assert len(req.checks) == CHECKS
        return [CheckOutcome(c.task, c.kind, "failure", "d" * 175) for c in req.checks]

    reason, _ = await answer_refused(nats_server.url, database_url, config, long_failures)
    assert "its verdict" in reason and "exceeds 262144" in reason
