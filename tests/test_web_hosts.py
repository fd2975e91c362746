"""The hosts page, /api/hosts and the hosts' /metrics, over read models the projector folded
from real host observations and the scheduler's pure verdicts on them."""

from __future__ import annotations

import re
import subprocess
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from checks.hostjudge import HostTaskState, judge
from configuration.hosts import HostRules
from events.types import ConfigApplied, FilesystemFigures, HostObserved
from services.web.settings import WebSettings
from tests.test_web_metrics import promtool
from tests.web_fixtures import Seeder, web_server

XSS = "<script>window.__xss=1</script>"


def _obs(agent: str, at: float, disk: float, mount: str = "/") -> HostObserved:
    return HostObserved(
        at=at,
        agent=agent,
        location="default",
        hostname=f"{agent}.example.org{XSS}",
        interval=30.0,
        cores=2,
        cpu_percent=12.5,
        load1=0.5,
        load5=0.4,
        load15=0.3,
        memory_total_bytes=8 << 30,
        memory_available_bytes=6 << 30,
        memory_percent=25.0,
        swap_total_bytes=0,
        swap_free_bytes=0,
        swap_percent=0.0,
        boot_time=at - 86400,
        filesystems=[
            FilesystemFigures(
                mount, "ext4", "/dev/vda", 100 << 30, 5 << 30, 4 << 30, disk, 1000, 900, 10.0
            )
        ],
    )


async def seed(database_url: str) -> None:
    s = Seeder(database_url)
    add_hosts(s)
    await s.flush()


def add_hosts(s: Seeder) -> None:
    """``calm`` is ok, ``full`` has a critical disk, both observed for the last hour; ``gone``
    stopped reporting an hour ago."""
    now = time.time()
    states: dict[str, HostTaskState] = {}
    for agent, disk, end in (("calm", 40.0, now), ("full", 95.0, now), ("gone", 50.0, now - 3600)):
        for k in range(12):
            obs = _obs(agent, end - 3300 + k * 300, disk)
            verdict, defs, after = judge(obs, HostRules(), states)
            states.update(after)
            if k == 0:
                s.add(
                    ConfigApplied(
                        at=obs.at,
                        revision="h",
                        source=f"hosts:{agent}",
                        applied_by="scheduler",
                        added=list(defs.values()),
                    )
                )
            s.add(obs)
            s.add(verdict)


async def test_hosts_page_worst_first_with_figures_graphs_and_task_links(database_url):
    await seed(database_url)
    settings = WebSettings(cookie_secret="x" * 32, unauthenticated_access="all")
    async with web_server(database_url, settings) as web, httpx.AsyncClient(base_url=web.url) as c:
        page = await c.get("/hosts")
        assert page.status_code == 200
        order = re.findall(r'data-agent="([^"]+)" data-severity="([^"]+)"', page.text)
        assert order == [("full", "critical"), ("calm", "ok"), ("gone", "ok")]
        assert XSS not in page.text and "&lt;script&gt;" in page.text
        assert page.text.count('<figure class="graph">') == 12  # four graphs per host
        assert "<script>" not in page.text.split("</head>", 1)[1]  # no inline script (CSP)
        assert 'href="/domains/host%3Afull"' in page.text
        for span in ("1h", "24h", "7d"):
            assert (await c.get("/hosts", params={"span": span})).status_code == 200
        one = await c.get("/hosts/full")
        assert "disk / 95.0 % used (warning above 80 %, critical above 90 %)" in one.text
        assert re.search(r'href="/tasks/h[0-9a-f]+">host://full/disk/<', one.text)
        assert (await c.get("/hosts/nobody")).status_code == 404
        # The dashboard and the API list host tasks like any task.
        dashboard = await c.get("/")
        assert "host://full/disk/" in dashboard.text and "host:full" in dashboard.text
        tasks = (await c.get("/api/tasks")).json()
        assert {t["url"] for t in tasks if t["severity"] == "critical"} == {"host://full/disk/"}
        hosts = (await c.get("/api/hosts")).json()
        assert [(h["agent"], h["severity"]) for h in hosts] == [
            ("full", "critical"),
            ("calm", "ok"),
            ("gone", "ok"),
        ]
        assert hosts[0]["filesystems"][0]["used_percent"] == 95.0
        metrics = (await c.get("/metrics")).text
        samples = {
            (x.name, tuple(sorted(x.labels.items()))): x.value
            for family in text_string_to_metric_families(metrics)
            for x in family.samples
        }
        assert samples[("node_load1", (("agent", "calm"),))] == 0.5
        disk = (("agent", "full"), ("device", "/dev/vda"), ("fstype", "ext4"), ("mountpoint", "/"))
        assert samples[("node_filesystem_avail_bytes", disk)] == 4 << 30
        assert samples[("tocsin_host_memory_total_bytes", (("agent", "full"),))] == 8 << 30
        assert "# TYPE node_boot_time_seconds gauge" in metrics
        assert 'agent="gone"' not in metrics  # silent: exported no more, as a node down
        # promtool's lint accepts it all: no camelCase name (promtool exits 3 on one).
        assert _lint(metrics) == []


def _lint(text: str) -> list[str]:
    done = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True
    )
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
