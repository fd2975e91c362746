"""No secret of the configuration in clear anywhere Tocsin keeps or shows things.

`tocsin dev`, with ``--secure`` (location keys) and without (no key: transient ones),
runs a configuration with a request header, a request body, URL credentials and a token in
a query string; once its tasks are judged and a notification went out, the NATS store,
every table, every log and every page are searched for the secrets (finding 4 of issue 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
import pytest
from nats.js.api import StorageType

from configuration import redaction
from events import codec, streams
from events.types import CheckRequested, CheckSpec, RequestData, TaskDef
from security import transient
from security.sealing import Opener, Sealer, Unsealer, new_location_key
from tests.devproc import free_ports, get, pg_url, start, stop, wait_serving
from tests.helpers import every_row, wait_for
from tests.security_support import connect, start_secured

SECRETS = ["hdrSecret1x", "bodySecret2x", "urlSecret3x", "querySecret4x"]


def _config(demo_port: int) -> str:
    return f"""
general:
  frequency: 2s
  ipv6: false
  timeout: 3s
  unauthenticated_access: all
  alerts:
    ok: [local]
    warning: [local]
    critical: [local]
    unknown: [local]
websites:
  - domain: http://tocsin:{SECRETS[2]}@127.0.0.1:{demo_port}
    paths:
      - path: /healthy
        method: POST
        request_data:
          data: '{{"token": "{SECRETS[1]}"}}'
          is_json: true
          headers:
            X-Private-Token: {SECRETS[0]}
        checks:
          - status-is: 200
      - path: /broken
        checks:
          - status-is: 200
      - path: /query?api_key={SECRETS[3]}&page=2
        checks:
          - status-is: 200
"""


def _page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode(errors="replace")


def _found(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.mark.parametrize("secure", [True, False], ids=["location-keys", "no-location-key"])
def test_no_secret_in_the_log_the_tables_the_logs_or_the_pages(
    tmp_path: Path, secure: bool
) -> None:
    """With location keys the secrets are sealed to them; without (``tocsin dev`` without
    ``--secure``), to transient keys NATS keeps in memory only: the agent opens them either
    way, and they are nowhere in clear."""
    data = tmp_path / "data"
    ports = free_ports()
    config = tmp_path / "secret.yaml"
    config.write_text(_config(ports["demo"]))
    proc = start(data, ports, *(["--secure"] if secure else []), "--config", str(config))
    base = f"http://127.0.0.1:{ports['web']}"
    try:
        wait_serving(proc)
        deadline = time.monotonic() + 90
        tasks: list[dict] = []
        while time.monotonic() < deadline:
            tasks = get(f"{base}/api/tasks")  # type: ignore[assignment]
            notified = "SELECT count(*) FROM tocsin.notifications"
            if len(tasks) == 3 and all(t["severity"] not in (None, "pending") for t in tasks):
                if asyncio.run(_count(pg_url(data, ports["pg"]), notified)) > 0:
                    break
            time.sleep(1)
        else:
            raise AssertionError(f"tasks not judged and notified: {tasks}")
        by_path = {t["url"].rsplit("/", 1)[1].split("?")[0]: t for t in tasks}
        # The sealed request (URL credentials as a Basic header) was opened and sent.
        assert by_path["healthy"]["severity"] == "ok", by_path
        pages = [
            f"{base}/",
            f"{base}/audit",
            f"{base}/agents",
            f"{base}/api/tasks",
            f"{base}/api/results",
            f"{base}/api/incidents",
            f"{base}/metrics",
            f"{base}/status",
        ]
        for t in tasks:
            pages += [f"{base}/tasks/{t['id']}", f"{base}/api/tasks/{t['id']}"]
        shown = {url: _page(url) for url in pages}
        assert "••••" in shown[f"{base}/tasks/{by_path['healthy']['id']}"]
        assert "page=2" in shown[f"{base}/tasks/{by_path['query']['id']}"]
        for url, body in shown.items():
            assert not _found(body), f"{url} shows {_found(body)}"
        rows = "\n".join(asyncio.run(every_row(pg_url(data, ports["pg"]))))
    finally:
        stop(proc)
    assert "tocsin.config_history" in rows and "tocsin.results" in rows
    leaked = [line for line in rows.splitlines() if _found(line)]
    assert not leaked, leaked[:5]
    # Every file the stack wrote but PostgreSQL's own (searched above as tables): the NATS
    # store, the logs, the credentials and keys.
    files = [p for p in data.rglob("*") if p.is_file() and "postgres" not in p.parts]
    assert any("jetstream" in p.parts for p in files)
    for path in files:
        assert not _found(path.read_bytes().decode("latin-1")), f"{path} holds a secret"


async def _count(url: str, query: str) -> int:
    try:
        conn = await asyncpg.connect(url)
    except OSError:
        return 0
    try:
        return int(await conn.fetchval(query))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


def test_a_sealed_request_shows_no_secret_and_opens_whole() -> None:
    """URL credentials, a literal token under a secret-looking query parameter and a
    ``${ENV}`` value anywhere in the URL travel sealed; the agent gets the request whole."""
    private, public = new_location_key()
    sealer = Sealer({"eu": public})
    sealer.hide({"envTok5x"})
    url = "https://u:pw6x@h.example/p?api_key=litTok7x&q=envTok5x&page=2"
    req = CheckRequested(
        at=1.8e9,
        request="r1",
        group="g1",
        location="eu",
        url=url,
        method="GET",
        ip_version=4,
        timeout=5.0,
        due=1.8e9,
        checks=[CheckSpec("t1", "status-is", 200)],
        request_data=RequestData(headers={"X-Private-Token": "hdr8x"}),
    )
    logged = codec.encode(sealer.seal(req)).decode()
    assert not [s for s in ("pw6x", "litTok7x", "envTok5x", "hdr8x") if s in logged], logged
    assert "page=2" in logged
    decoded = codec.decode(logged.encode(), "tocsin.check.requested.eu.g1")
    assert isinstance(decoded, CheckRequested)
    opened = Unsealer(private).open(decoded)
    assert opened.url == "https://h.example/p?api_key=litTok7x&q=envTok5x&page=2"
    assert opened.request_data is not None
    assert opened.request_data.headers["X-Private-Token"] == "hdr8x"
    assert opened.request_data.headers["Authorization"] == "Basic dTpwdzZ4"  # u:pw6x


def test_a_url_sent_as_it_is_is_masked_once_a_value_of_it_is_secret() -> None:
    """A request whose URL has nothing to hide goes out as it is, again and again; request
    data for the same URL is still sealed; once the configuration makes a value of the URL
    secret (``${ENV}``), the same URL is masked and travels sealed."""
    private, public = new_location_key()
    sealer = Sealer({"eu": public})
    plain = msgspec.structs.replace(
        _request(), url="https://h.example/p?q=envTok5x", request_data=None
    )
    assert sealer.seal(plain) == plain
    assert sealer.seal(plain) == plain
    with_data = sealer.seal(msgspec.structs.replace(_request(), url=plain.url))
    assert with_data.sealed is not None and with_data.request_data is None
    sealer.hide({"envTok5x"})
    masked = sealer.seal(plain)
    assert "envTok5x" not in codec.encode(masked).decode()
    assert masked.sealed is not None
    assert Unsealer(private).open(masked).url == plain.url


def test_urls_found_clean_with_the_secrets_go_out_without_being_redacted_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A configuration's first round is every URL at once: those with nothing to hide are
    found so when the secrets are set, not on each one's first request; the others are still
    masked, and a URL with credentials is never taken for clean."""
    _, public = new_location_key()
    sealer = Sealer({"eu": public})
    clean, secret = "https://h.example/p?page=2", "https://h.example/p?q=envTok5x"
    with_userinfo = "https://u:pw6x@h.example/p"
    sealer.hide({"envTok5x"}, [clean, secret, with_userinfo])

    def redacted_again(*_: object) -> str:
        raise AssertionError("a URL found clean was redacted again")

    plain = msgspec.structs.replace(_request(), url=clean, request_data=None)
    with monkeypatch.context() as m:
        m.setattr(redaction, "public_url", redacted_again)
        assert sealer.seal(plain) == plain
    for url, hidden in ((secret, "envTok5x"), (with_userinfo, "pw6x")):
        sealed = sealer.seal(msgspec.structs.replace(_request(), url=url, request_data=None))
        assert hidden not in codec.encode(sealed).decode() and sealed.sealed is not None


async def test_transient_keys_are_shared_and_put_back_after_nats_forgot_them(
    nats_server: Any,
) -> None:
    """Two schedulers seal to one transient key; once NATS lost it (a restart: the bucket is
    memory only), what was sealed to it cannot be opened, with a reason, and the next
    refresh puts a new key that agents read."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        first, second = Sealer({}), Sealer({})
        await first.refresh(js, ["eu"])
        await second.refresh(js, ["eu"])
        opener = Opener(None, js, "eu")
        for sealer in (first, second):
            sealed = sealer.seal(_request())
            assert sealed.sealed is not None and sealed.request_data is None
            assert (await opener.open(sealed)).request_data == _request().request_data
        info = await js.stream_info(f"KV_{transient.BUCKET}")
        assert info.config.storage == StorageType.MEMORY
        old = first.seal(_request())
        await js.delete_stream(f"KV_{transient.BUCKET}")  # what a NATS restart does to it
        with pytest.raises(RuntimeError, match="NATS holds no transient key"):
            await Opener(None, js, "eu").open(old)

        async def put_back() -> bool:
            await first.refresh(js)  # what the scheduler does every second
            with contextlib.suppress(RuntimeError):
                fresh = Opener(None, js, "eu")  # an agent that must read the bucket
                return (await fresh.open(first.seal(_request()))).request_data is not None
            return False

        await wait_for(put_back, 30, what="a new transient key")
    finally:
        await nc.close()


def _request(location: str = "eu") -> CheckRequested:
    return CheckRequested(
        at=1.8e9,
        request="r1",
        group="g1",
        location=location,
        url="https://h.example/p",
        method="GET",
        ip_version=4,
        timeout=5.0,
        due=1.8e9,
        checks=[CheckSpec("t1", "status-is", 200)],
        request_data=RequestData(headers={"X-Private-Token": "hdr9x"}),
    )


def test_masking_twice_shows_the_same_fingerprints() -> None:
    """A task as the log shows it, masked again (a notifier naming a task applied from
    another file), keeps the fingerprints an operator compares."""
    task = TaskDef(
        id="t1",
        group="g1",
        domain="u:pw6x@h.example",
        url="https://u:pw6x@h.example/p?api_key=litTok7x&page=2",
        method="POST",
        ip_version=4,
        check="status-is",
        expected=200,
        frequency=60.0,
        request_data=RequestData(data={"token": "b"}, headers={"X-Private-Token": "hdr8x"}),
    )
    once = redaction.redact(task)
    assert redaction.redact(once) == once
    assert "pw6x" not in once.url and "litTok7x" not in once.url


async def test_with_authorization_only_the_scheduler_keeps_transient_keys(
    tmp_path: Path,
) -> None:
    """The scheduler may create a transient key for a location without its own; an agent
    (it has its location's key) may not read the bucket."""
    sb = start_secured(tmp_path, {"a1": "eu"})
    scheduler = await connect(sb.url, sb.security("scheduler"))
    admin = await connect(sb.url, sb.security("admin"))
    try:
        await streams.ensure(admin.jetstream(), ["eu", "nokey"])
        sealer = Sealer({})
        await sealer.refresh(scheduler.jetstream(), ["nokey"])
        assert sealer.seal(_request("nokey")).sealed is not None
        agent = await connect(sb.url, sb.security("a1"))
        try:
            with pytest.raises(Exception):  # noqa: B017  # refused, whatever nats-py calls it
                await transient.private_key(agent.jetstream(), "nokey")
        finally:
            await agent.close()
    finally:
        await scheduler.close()
        await admin.close()
        sb.server.stop()
