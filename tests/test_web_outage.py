"""While PostgreSQL is out of reach the web says so: pages and the API answer 503 with a
reason and ``Retry-After`` (HTML for browsers, JSON for the API), ``/healthz`` says what is
down, ``/metrics`` still answers with what it can and ``tocsin_read_model_up 0``; once the
server is back, every page answers again. A PostgreSQL of the test's own is stopped and
restarted (the session's shared one stays up)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from runtime.embedded import PostgresServer
from services.web.settings import WebSettings
from tests.test_web_pages import seed
from tests.web_fixtures import web_server

OPEN = WebSettings(cookie_secret="t" * 32, unauthenticated_access="all")
PROMTOOL = "/usr/bin/promtool"

#: Path, and whether it answers JSON (else an HTML page), while the database is away.
ROUTES = {
    "dashboard": ("/", False),
    "domain page": ("/domains/a.example", False),
    "task page": ("/tasks/t1-a.example", False),
    "tasks api": ("/api/tasks", True),
    "badge": ("/badges/task/t1-a.example/status.svg", True),
}


def _promtool_ok(text: str) -> None:
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stderr.decode()


async def test_database_out_of_reach_is_a_503_with_a_reason(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "pg").start()
    try:
        await seed(server.url)
        async with web_server(server.url, OPEN) as web, httpx.AsyncClient(base_url=web.url) as c:
            for name, (path, _) in ROUTES.items():
                assert (await c.get(path)).status_code == 200, name
            server.stop()
            for name, (path, machine) in ROUTES.items():
                r = await c.get(path)
                assert r.status_code == 503, (name, r.status_code, r.text[:300])
                assert int(r.headers["retry-after"]) > 0, name
                assert "Traceback" not in r.text, name
                if machine:
                    assert "database" in r.json()["detail"], name
                else:
                    assert r.headers["content-type"].startswith("text/html"), name
                    assert "database" in r.text, name
            health = await c.get("/healthz")
            assert health.status_code == 503
            assert health.json()["down"] == ["database"]
            metrics = await c.get("/metrics")
            assert metrics.status_code == 200
            assert "tocsin_read_model_up 0.0" in metrics.text
            _promtool_ok(metrics.text)
            server.start()
            for name, (path, _) in ROUTES.items():
                assert (await c.get(path)).status_code == 200, name
            assert (await c.get("/healthz")).status_code == 200
            metrics = await c.get("/metrics")
            assert "tocsin_read_model_up 1.0" in metrics.text
            _promtool_ok(metrics.text)
    finally:
        server.stop()


async def test_under_a_root_path_the_api_still_answers_json(tmp_path: Path) -> None:
    """Behind a proxy (``root_path``), whether it passes the prefix on or cuts it: the API,
    badges and metrics answer as without one, the pages in HTML."""
    server = PostgresServer(tmp_path / "pg").start()
    under = WebSettings(cookie_secret="t" * 32, unauthenticated_access="all", root_path="/tocsin")
    try:
        await seed(server.url)
        async with web_server(server.url, under) as web, httpx.AsyncClient(base_url=web.url) as c:
            server.stop()
            for path, machine in ROUTES.values():
                for sent in (f"/tocsin{path}", path):
                    r = await c.get(sent, headers={"Accept": "application/json"})
                    assert r.status_code == 503, (sent, r.status_code, r.text[:300])
                    kind = r.headers["content-type"]
                    assert kind.startswith("application/json" if machine else "text/html"), sent
            for sent in ("/tocsin/metrics", "/metrics"):
                metrics = await c.get(sent)
                assert metrics.status_code == 200, sent
                assert "tocsin_read_model_up 0.0" in metrics.text
            assert (await c.get("/tocsin/healthz")).json()["down"] == ["database"]
    finally:
        server.stop()
