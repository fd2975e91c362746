"""No secret of a request in what is said about its run: an answer the HTTP client refuses
(aiohttp's errors end with ``url='…'``), a check's detail naming the URL it asked, a target
echoing a header. The texts still say what went wrong, with the secret masked as the log
masks it in the URL (``••••`` and a fingerprint).

``tocsin check --json`` for each case of the table; then every case at once through the
whole pipeline (scheduler, agent, projector, web): the secret is in no event of the log, no
run-log line, no table of PostgreSQL and no answer of the API or the pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import pytest

from events import codec, control, subjects
from events.types import CheckCompleted
from events.values import MASK
from runtime import bus
from runtime.embedded import NatsServer
from services import cli
from services.web.settings import WebSettings
from tests.helpers import Stack, every_row, fetch, wait_for, write_config
from tests.rawsite import RawSite
from tests.web_fixtures import web_server

#: The value of ``${HOOK_SECRET}`` in the configurations.
HOOK = "ENVHOOKSECRET77"


@dataclass(frozen=True)
class Case:
    #: The path (and query) of the task, as written in the configuration.
    path: str
    check: str
    #: What must be nowhere in clear.
    secret: str
    #: What the texts must still say: the failure is told, not hidden.
    says: str
    headers: str = ""
    #: ``user:password@`` in the website's address.
    credentials: str = ""


CASES = [
    pytest.param(
        Case("/hooks/${HOOK_SECRET}/run", "status-is: 200", HOOK, "Bad status line"),
        id="bad-status-line-env-in-path",
    ),
    pytest.param(
        Case("/badchunk?token=SUPERSECRET1", "body-contains: x", "SUPERSECRET1", "chunk size"),
        id="bad-chunk-token-in-query",
    ),
    pytest.param(
        Case("/badchunk?sig=k3Y9z", "status-is: 200", "k3Y9z", "chunk size"),
        id="bad-chunk-short-sig-in-query",
    ),
    pytest.param(
        Case("/bigheaders?api_key=SUPERSECRET3", "status-is: 200", "SUPERSECRET3", "8190 bytes"),
        id="headers-too-big-api-key-in-query",
    ),
    pytest.param(
        Case("/manyheaders?page=${HOOK_SECRET}", "status-is: 200", HOOK, "Too many headers"),
        id="too-many-headers-env-in-query",
    ),
    pytest.param(
        Case("/ok?token=SUPERSECRET5", "http-to-https: 301", "SUPERSECRET5", "answered 200"),
        id="http-to-https-answered-200-token-in-query",
    ),
    pytest.param(
        Case("/plainredirect?x=${HOOK_SECRET}", "http-to-https: true", HOOK, "not to an https"),
        id="http-to-https-redirects-to-http-env-in-query",
    ),
    pytest.param(
        Case(
            "/echo",
            """json-is: '{"token": "other"}'""",
            HOOK,
            "body is",
            headers="X-Token: ${HOOK_SECRET}",
        ),
        id="header-from-env-echoed-in-the-body",
    ),
    pytest.param(
        Case(
            "/hooks/plain",
            "status-is: 200",
            "CREDSECRET9",
            "Bad status line",
            credentials="tocsin:CREDSECRET9@",
        ),
        id="bad-status-line-credentials-in-the-url",
    ),
]


def _website(case: Case, port: int) -> str:
    lines = [
        f"  - domain: http://{case.credentials}127.0.0.1:{port}",
        "    paths:",
        f"      - path: {case.path}",
        "        checks:",
        f"          - {case.check}",
    ]
    if case.headers:
        lines += ["        request_data:", "          headers:", f"            {case.headers}"]
    return "\n".join(lines)


def _config(cases: list[Case], port: int) -> str:
    head = "general:\n  frequency: 2s\n  ipv6: false\n  timeout: 3s\nwebsites:\n"
    return head + "\n".join(_website(c, port) for c in cases) + "\n"


@pytest.fixture(scope="module")
def raw_site() -> Iterator[RawSite]:
    with RawSite() as site:
        yield site


@pytest.mark.parametrize("case", CASES)
def test_tocsin_check_tells_the_failure_without_the_secret(
    case: Case, raw_site: RawSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("HOOK_SECRET", HOOK)
    config = write_config(tmp_path / "c.yaml", _config([case], raw_site.port))
    cli.main(["check", "--config", str(config), "--json"])
    out = capsys.readouterr().out
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert case.secret not in out, out
    assert row["status"] == "failure", row
    assert case.says in row["context"], row
    assert MASK in out, out


async def test_no_secret_of_a_failed_run_in_the_log_the_tables_or_the_api(
    nats_server: NatsServer,
    database_url: str,
    raw_site: RawSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every case at once, each its own request group, through the agent's sealed requests."""
    monkeypatch.setenv("HOOK_SECRET", HOOK)
    cases: list[Case] = [p.values[0] for p in CASES]  # type: ignore[misc]
    secrets = {c.secret for c in cases}
    config = write_config(tmp_path / "c.yaml", _config(cases, raw_site.port))
    nc = await nats.connect(nats_server.url)
    lines: list[control.LogLine] = []

    async def told(msg: nats.aio.msg.Msg) -> None:
        lines.append(control.decode_line(msg.data))

    await nc.subscribe(f"{subjects.LIVE_PREFIX}.>", cb=told)
    stack = Stack(nats_server.url, database_url, config)
    stack.scheduler()
    stack.agent()
    stack.projector()
    settings = WebSettings(cookie_secret="s" * 32, unauthenticated_access="all")
    try:

        async def judged() -> bool:
            rows = await fetch(database_url, "SELECT severity FROM tasks")
            return len(rows) == len(cases) and all(r["severity"] == "critical" for r in rows)

        await wait_for(judged, 60, what="every task judged critical")
        events = [m async for m in bus.replay(nc.jetstream(), subjects.ALL)]
        async with web_server(database_url, settings) as web:
            tasks = (await _get(web.url, "/api/tasks")).json()
            pages = ["/api/tasks", "/api/results", "/api/incidents", "/"]
            pages += [f"/api/tasks/{t['id']}" for t in tasks] + [f"/tasks/{t['id']}" for t in tasks]
            shown = {page: (await _get(web.url, page)).text for page in pages}
        tables = await every_row(database_url)
    finally:
        await stack.close()
        await nc.close()

    completed = [
        m.data.decode()
        for m in events
        if isinstance(codec.decode(m.data, m.subject), CheckCompleted)
    ]
    for m in events:
        leaked = [s for s in secrets if s.encode() in m.data]
        assert not leaked, f"{m.subject} holds {leaked}: {m.data[:600]!r}"
    assert any(line.step == "error" for line in lines)
    for line in lines:
        leaked = [s for s in secrets if s in line.text]
        assert not leaked, f"run-log line holds {leaked}: {line.text}"
    for page, body in shown.items():
        leaked = [s for s in secrets if s in body]
        assert not leaked, f"{page} shows {leaked}"
    leaked_rows = [row for row in tables if any(s in row for s in secrets)]
    assert not leaked_rows, leaked_rows[:3]
    # What failed is still told, the secret masked.
    for case in cases:
        said = [text for text in completed if case.says in text]
        assert said, f"no completion says {case.says!r}"
        assert any(MASK in text for text in said), said


async def _get(base: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(base + path, timeout=30)
