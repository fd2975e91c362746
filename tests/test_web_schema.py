"""The API keeps its published contract: schemathesis (every check) runs against a live
web service from its own /openapi.json, open to all and behind a token, and finds nothing."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.web import authdb
from services.web.apimodels import ERRORS
from services.web.app import create_app
from services.web.settings import WebSettings
from tests.test_web_pages import seed
from tests.web_fixtures import web_server

ST = Path(sys.executable).with_name("st")


async def schemathesis(url: str, tmp_path: Path, *args: str) -> tuple[int, str]:
    # Asynchronous: the web service under test runs in this very event loop.
    proc = await asyncio.create_subprocess_exec(
        str(ST),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        os.environ.get("TOCSIN_SCHEMATHESIS_EXAMPLES", "40"),
        "--seed",
        "11",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report-dir",
        str(tmp_path / "report"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.timeout(600)
async def test_schemathesis_finds_nothing_open_to_all(database_url, tmp_path):
    await seed(database_url)
    settings = WebSettings(cookie_secret="t" * 32, unauthenticated_access="all")
    async with web_server(database_url, settings) as web:
        code, out = await schemathesis(web.url, tmp_path)
    assert code == 0, out[-20000:]


@pytest.mark.timeout(600)
async def test_schemathesis_finds_nothing_with_a_token(database_url, tmp_path):
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await authdb.ensure(conn)
        token = await authdb.create_token(conn, "schemathesis")
    finally:
        await conn.close()
    async with web_server(database_url) as web:
        code, out = await schemathesis(
            web.url, tmp_path, "--header", f"Authorization: Bearer {token}"
        )
    assert code == 0, out[-20000:]


async def test_the_schema_declares_security_errors_and_types(database_url):
    async with web_server(database_url) as web, httpx.AsyncClient(base_url=web.url) as c:
        schema = (await c.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    assert any(s.get("in") == "cookie" for s in schemes.values())
    tasks = schema["paths"]["/api/tasks"]["get"]
    assert tasks["security"] and {"400", "401", "422"} <= set(tasks["responses"])
    assert tasks["responses"]["200"]["content"]["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/Task"
    }
    assert "404" in schema["paths"]["/api/tasks/{task_id}"]["get"]["responses"]
    open_all = WebSettings(cookie_secret="t" * 32, unauthenticated_access="all")
    async with web_server(database_url, open_all) as web, httpx.AsyncClient(base_url=web.url) as c:
        schema = (await c.get("/openapi.json")).json()
    tasks = schema["paths"]["/api/tasks"]["get"]
    assert "security" not in tasks and "401" not in tasks["responses"]


def _secured_operations() -> list[object]:
    """Every operation of the schema that asks for credentials (the app is only built: its
    schema needs no database)."""
    app = create_app("postgresql://unused/unused", WebSettings(cookie_secret="t" * 32))
    return [
        pytest.param(op["responses"], id=f"{method.upper()} {path}")
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
        if op.get("security")
    ]


@pytest.mark.parametrize("responses", _secured_operations())
def test_an_operation_asking_for_credentials_documents_its_refusals(
    responses: dict[str, object],
) -> None:
    """A 401 without credentials, a 400 for a NUL (every route), a 422 for a parameter out of
    range: each answer a client may get is in the schema (schemathesis ST103 otherwise)."""
    assert {str(code) for code in ERRORS} <= set(responses)
