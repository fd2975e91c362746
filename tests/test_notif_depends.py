"""Dependencies: the decision table (holds and releases), the configuration's checks
(unknown entries, self, cycles with FILE:LINE), and end to end: a dependency failing under
two dependants gives one alert, not three."""

from __future__ import annotations

import asyncio

import pytest

from configuration import config as configuration
from configuration import dependencies
from events.types import Judgement, Severity
from services.notifier import settings as notify_settings
from services.notifier.settings import NotifySettings, Target
from services.notifier.simulate import Simulation
from tests.helpers import Stack, fetch, wait_for, write_config
from tests.notif_receivers import HttpReceiver
from tests.test_notif_service import Running

DB, APP, API = "db", "app", "api"


def _settings(depends: dict[str, set[str]]) -> NotifySettings:
    return NotifySettings(
        alerts={sev: [Target("local")] for sev in ("ok", "warning", "critical", "unknown")},
        depends=depends,
        task_names={DB: "https://db.example.org/", APP: "https://app.example.org/"},
    )


def _run(depends: dict[str, set[str]], steps: list[tuple[str, Severity, int]]) -> list[str]:
    """Each step is (task, severity, consecutive failures); the result lists what was sent."""
    sim = Simulation(_settings(depends))
    last: dict[str, Severity] = {}
    out = []
    for seq, (task, sev, failures) in enumerate(steps, 1):
        j = Judgement(task, sev, last.get(task, "ok"), "r", failures)
        last[task] = sev
        out += [f"{d.task} {d.kind} {d.severity}" for d in sim.judge(seq, float(seq), j)]
    return out


@pytest.mark.parametrize(
    ("depends", "steps", "sent"),
    [
        pytest.param(
            {},
            [(DB, "critical", 1), (APP, "critical", 1)],
            ["db alert critical", "app alert critical"],
            id="no-dependency-both-alert",
        ),
        pytest.param(
            {APP: {DB}},
            [(DB, "critical", 1), (APP, "critical", 1), (APP, "critical", 2)],
            ["db alert critical"],
            id="dependant-held-while-dependency-fails",
        ),
        pytest.param(
            {APP: {DB}, API: {DB}},
            [(DB, "critical", 1), (APP, "critical", 1), (API, "critical", 1)],
            ["db alert critical"],
            id="one-alert-for-many-dependants",
        ),
        pytest.param(
            {APP: {DB}},
            [(DB, "critical", 1), (APP, "critical", 1), (DB, "ok", 0), (APP, "critical", 2)],
            ["db alert critical", "db recovery ok", "app alert critical"],
            id="dependant-still-failing-alerts-after-recovery",
        ),
        pytest.param(
            {APP: {DB}},
            [(DB, "critical", 1), (APP, "critical", 1), (APP, "ok", 0), (DB, "ok", 0)],
            ["db alert critical", "db recovery ok"],
            id="dependant-recovered-meanwhile-says-nothing",
        ),
        pytest.param(
            {APP: {DB}},
            [(APP, "critical", 1), (DB, "critical", 1), (APP, "critical", 2), (APP, "ok", 0)],
            ["app alert critical", "db alert critical", "app recovery ok"],
            id="alerted-before-dependency-failed-recovers-normally",
        ),
        pytest.param(
            {APP: {DB}},
            [(DB, "warning", 1), (APP, "critical", 1)],
            ["db alert warning"],
            id="any-non-ok-dependency-holds",
        ),
        pytest.param(
            {APP: {DB}},
            [(APP, "critical", 1)],
            ["app alert critical"],
            id="dependency-never-judged-holds-nothing",
        ),
    ],
)
def test_dependency_decisions(depends, steps, sent):
    assert _run(depends, steps) == sent


def test_held_says_blocked_by_the_dependency():
    sim = Simulation(_settings({APP: {DB}}))
    sim.judge(1, 1.0, Judgement(DB, "critical", "ok", "down", 1))
    sim.judge(2, 2.0, Judgement(APP, "critical", "ok", "502", 1))
    ((seq, outcome),) = sim.held
    assert seq == 2 and outcome.held == "blocked by https://db.example.org/"


@pytest.mark.parametrize(
    ("edges", "loop"),
    [
        pytest.param({}, None, id="empty"),
        pytest.param({"a": {"b"}, "b": {"c"}}, None, id="chain"),
        pytest.param({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"], id="two"),
        pytest.param({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"], id="three"),
        pytest.param({"a": {"b", "c"}, "c": {"c"}}, ["c", "c"], id="self"),
        pytest.param({"a": {"b"}, "b": {"c"}, "x": {"b"}, "c": set()}, None, id="diamond-free"),
    ],
)
def test_cycle(edges, loop):
    assert dependencies.cycle(edges) == loop


SITES = """general:
  frequency: 1m
  ipv6: false
websites:
  - domain: https://db.example.org
    paths:
      - path: /health
        checks:
          - status-is: 200
  - domain: https://app.example.org
    depends_on: [{app_deps}]
    paths:
      - path: /
        checks:
          - status-is: 200
  - domain: https://proxy.example.org
    depends_on: [{proxy_deps}]
    paths:
      - path: /
        checks:
          - status-is: 200
"""


@pytest.mark.parametrize(
    ("app_deps", "proxy_deps", "message"),
    [
        pytest.param(
            "https://app.example.org",
            "db.example.org",
            "c.yaml:11:18: websites[1].depends_on[0]: 'https://app.example.org' is this website",
            id="itself",
        ),
        pytest.param(
            "nowhere.example.org",
            "db.example.org",
            "c.yaml:11:18: websites[1].depends_on[0]: 'nowhere.example.org' names no website",
            id="unknown",
        ),
        pytest.param(
            "https://db.example.org/nope",
            "db.example.org",
            "'https://db.example.org/nope' names no website nor path",
            id="unknown-path",
        ),
        pytest.param(
            "https://proxy.example.org",
            "https://app.example.org/",
            "c.yaml:17:18: websites[2].depends_on[0]: dependency cycle: app.example.org → "
            "proxy.example.org → app.example.org",
            id="cycle",
        ),
    ],
)
def test_configuration_refuses(tmp_path, app_deps, proxy_deps, message):
    path = write_config(tmp_path / "c.yaml", SITES.format(app_deps=app_deps, proxy_deps=proxy_deps))
    with pytest.raises(configuration.ConfigError) as exc:
        configuration.parse(str(path))
    assert message in str(exc.value)


def test_configuration_resolves_websites_and_paths(tmp_path):
    path = write_config(
        tmp_path / "c.yaml",
        SITES.format(app_deps="https://db.example.org/health", proxy_deps="app.example.org"),
    )
    s = notify_settings.load(str(path))
    ids = {t.url: t.id for t in s.tasks.values()}
    assert s.depends == {
        ids["https://app.example.org/"]: {ids["https://db.example.org/health"]},
        ids["https://proxy.example.org/"]: {ids["https://app.example.org/"]},
    }


E2E = """
general:
  frequency: 1s
  ipv6: false
  timeout: 2s
  alerts:
    ok: [webhook:ops]
    critical: [webhook:ops]
  webhooks:
    ops: {{url: "{hook}/hook/ops", secret: s}}
websites:
  - domain: http://127.0.0.1:{port}
    paths:
      - path: /db
        checks:
          - status-is: 200
  - domain: http://localhost:{port}
    depends_on: ["http://127.0.0.1:{port}/db"]
    retry_before_notification: 1
    paths:
      - path: /app1
        checks:
          - status-is: 200
      - path: /app2
        checks:
          - status-is: 200
"""


async def test_a_dependency_failure_gives_one_alert_then_dependants_still_failing_alert(
    nats_server, database_url, demo_target, tmp_path
):
    hook = await HttpReceiver().start()
    for name in ("db", "app1", "app2"):
        demo_target.set(name, status=200, body="fine")
    path = write_config(tmp_path / "c.yaml", E2E.format(hook=hook.url, port=demo_target.port))
    stack = Stack(nats_server.url, database_url, path)
    stack.scheduler()
    stack.agent()
    stack.projector()
    notifier = Running(nats_server.url, database_url, path)
    notifier.start()

    def calls() -> list[tuple[str, str]]:
        return [(c["json"]["kind"], c["json"]["url"].rsplit("/", 1)[1]) for c in hook.calls]

    try:
        await wait_for(
            lambda: fetch(
                database_url, "SELECT 1 FROM tasks WHERE severity = 'ok' HAVING count(*) = 3"
            ),
            what="three tasks judged ok",
        )
        for name in ("db", "app1", "app2"):
            demo_target.set(name, status=500)
        await wait_for(
            lambda: fetch(
                database_url, "SELECT 1 FROM tasks WHERE failures >= 3 HAVING count(*) = 3"
            ),
            what="every task failing three times",
        )
        # The dependency's alert may follow the read model: wait for it, then nothing else.
        await wait_for(lambda: asyncio.sleep(0, bool(hook.calls)), what="the db alert")
        assert calls() == [("alert", "db")]
        demo_target.set("db", status=200)
        await wait_for(
            lambda: asyncio.sleep(0, len(hook.calls) == 4), what="recovery and two alerts"
        )
        assert sorted(calls()[1:]) == [("alert", "app1"), ("alert", "app2"), ("recovery", "db")]
        await asyncio.sleep(2)
        assert len(hook.calls) == 4
    finally:
        await notifier.stop()
        await stack.close()
        await hook.stop()
