"""Make the one request of a request group and judge every check of it on the answer.

Shared by the agent service and the one-shot ``tocsin check`` command, so both
observe and evaluate the same way.

A check whose module defines ``target_url`` (``http-to-https``) is judged on
the answer to that URL instead: the prober makes one extra request per such
distinct URL, beside the group's own and whatever that one gives (as Argos's
agent). Its failure fails only the checks that needed it; the group's own
observation stays that of its URL.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp

from checks import CATALOGUE
from checks.base import MAX_BODY, Response
from checks.completion import completed
from checks.deadlines import Deadlines
from checks.masking import RequestSecrets
from checks.observe import OBSERVERS
from checks.observe.common import (
    FAMILIES,
    Answer,
    Lookups,
    ProbeContext,
    failed,
    named,
    not_after,
    other_family,
    read_body,
    reason,
)
from checks.runlog import RunLog, safe_url
from checks.sessions import PeerResponse, tls_line, tracing
from events.types import CheckCompleted, CheckOutcome, CheckRequested, Observation, RequestData
from runtime import __version__

USER_AGENT = f"Tocsin/{__version__} (uptime monitor)"
#: Headers worth keeping in the log: enough to explain a verdict, never cookies.
KEPT_HEADERS = ("content-type", "content-length", "location", "server", "cache-control", "date")


def request_body(rd: RequestData) -> tuple[bytes, str | None] | None:
    """The body and its content type, as Argos's agent sends ``data``: JSON with
    ``is_json`` (a string being JSON text already), a mapping as a form, else as the raw
    body with no content type (as httpx sends a string)."""
    if rd.data is None:
        return None
    if rd.is_json:
        text = rd.data if isinstance(rd.data, str) else json.dumps(rd.data)
        return text.encode(), "application/json"
    if isinstance(rd.data, dict):
        fields = [
            (str(k), _form_value(x))
            for k, v in rd.data.items()
            for x in (v if isinstance(v, list) else [v])
        ]
        return urlencode(fields).encode(), "application/x-www-form-urlencoded"
    return _form_value(rd.data).encode(), None


def _form_value(v: Any) -> str:
    """As httpx writes form values: true/false in lower case, null as empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Prober:
    """Holds one aiohttp session per IP version; use as an async context manager.

    ``ssl_context`` replaces the system trust store (tests use a private CA).
    """

    def __init__(self, concurrency: int = 500, ssl_context: ssl.SSLContext | None = None) -> None:
        self.concurrency = concurrency
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._sessions: dict[int, aiohttp.ClientSession] = {}
        #: The same connections, with each step of a request told to its run log: tracing
        #: costs every request a dozen calls, so only the runs someone watches pay for it.
        self._traced: dict[int, aiohttp.ClientSession] = {}
        self._deadlines = Deadlines()

    async def __aenter__(self) -> Prober:
        self._lookups = Lookups()
        for version, family in FAMILIES.items():
            connector = aiohttp.TCPConnector(
                resolver=self._lookups,
                family=family,
                limit=self.concurrency,
                ttl_dns_cache=60,
                ssl=self.ssl_context,
                enable_cleanup_closed=True,
            )
            options: dict[str, Any] = {
                "headers": {"User-Agent": USER_AGENT},
                "auto_decompress": True,
                "cookie_jar": aiohttp.DummyCookieJar(),
                # No timer of aiohttp's per request: each one's timeout is in _deadlines.
                "timeout": aiohttp.ClientTimeout(),
                "response_class": PeerResponse,
            }
            self._sessions[version] = aiohttp.ClientSession(connector=connector, **options)
            self._traced[version] = aiohttp.ClientSession(
                connector=connector, connector_owner=False, trace_configs=[tracing()], **options
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._deadlines.close()
        for session in (*self._traced.values(), *self._sessions.values()):
            await session.close()
        await self._lookups.close()

    async def observe(
        self, req: CheckRequested, url: str | None = None, runlog: RunLog | None = None
    ) -> Answer:
        """The answer to ``url`` (default: the group's URL) with the request's method and data."""
        url = url or req.url
        observer = OBSERVERS.get(url.partition(":")[0].lower())  # the scheme, without urlsplit
        if observer is not None:
            context = ProbeContext(self.ssl_context, self._sessions[req.ip_version], self._lookups)
            answer = await observer(req, url, context)
        else:
            answer = await self._http(req, url, runlog)
        if runlog is not None and answer[0].error is not None:
            await runlog.line("error", f"{answer[0].error_kind}: {answer[0].error}")
        return answer

    async def run(
        self,
        req: CheckRequested,
        agent: str,
        location: str,
        runlog: RunLog | None = None,
        secrets: RequestSecrets | None = None,
    ) -> CheckCompleted:
        """``runlog``: where the steps of the run are told as they happen (the agent's live
        log, when someone watches); none by default, and then no line is even written.
        ``secrets``: what no text of the completion may show (checks/masking.py); by default
        those the request itself tells (headers, body, credentials, secret parameters)."""
        started = time.time()
        if runlog is not None:
            await runlog.line(
                "start",
                f"{req.method} {safe_url(req.url)} (IPv{req.ip_version}, timeout "
                f"{req.timeout:g}s, {len(req.checks)} checks)",
            )
        try:
            # Most requests need no other URL: awaited as they are, no task made by a gather
            # (the agent's hot path).
            urls = (
                sorted({_target(s.kind, req.url) for s in req.checks} - {req.url})
                if not _TARGETS.keys().isdisjoint(s.kind for s in req.checks)
                else []
            )
            if urls:
                (observation, response), *others = await asyncio.gather(
                    self.observe(req, runlog=runlog),
                    *(self.observe(req, u, runlog) for u in urls),
                )
                extra = dict(zip(urls, others, strict=True))
            else:
                observation, response = await self.observe(req, runlog=runlog)
                extra = {}
            outcomes = evaluate_all(req, observation, response, extra)
        except Exception as exc:
            failed = cannot_run(req, agent, location, started, exc)
            observation, outcomes = failed.observation, failed.outcomes
        if runlog is not None:
            for o in outcomes:
                await runlog.line(
                    "check", f"{o.kind}: {o.status}{f' — {o.detail}' if o.detail else ''}"
                )
            await runlog.line("done", f"completed in {runlog.ms():.0f} ms")
        return completed(
            req,
            agent,
            location,
            started,
            observation,
            outcomes,
            secrets=secrets if secrets is not None else RequestSecrets.of(req),
        )

    async def _http(self, req: CheckRequested, url: str, runlog: RunLog | None) -> Answer:
        if runlog is None:
            session = self._sessions[req.ip_version]
            kwargs: dict[str, Any] = {"allow_redirects": False}
        else:
            session = self._traced[req.ip_version]
            kwargs = {"allow_redirects": False, "trace_request_ctx": runlog}
        if req.request_data is not None:
            kwargs["headers"] = dict(req.request_data.headers)
            payload = request_body(req.request_data)
            if payload is not None:
                kwargs["data"], content_type = payload
                if content_type is not None:
                    kwargs["headers"].setdefault("Content-Type", content_type)
        start = time.perf_counter()
        if (wrong := other_family(url, req.ip_version)) is not None:
            return failed(wrong, start, req.timeout)
        try:
            with self._deadlines.within(req.timeout):
                async with session.request(req.method, url, **kwargs) as resp:
                    sslobj = resp.ssl_object if isinstance(resp, PeerResponse) else None
                    cert_not_after = not_after(sslobj.getpeercert()) if sslobj else None
                    if sslobj is not None and runlog is not None:
                        await runlog.line("tls", tls_line(sslobj))
                    body, cut = await read_body(resp.content, MAX_BODY)
                    elapsed = (time.perf_counter() - start) * 1000
                    headers = {k.lower(): v for k, v in resp.headers.items()}
        except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            return failed(self._lookups.blame(exc, url, req.timeout), start, req.timeout)
        response = Response(resp.status, headers, body, elapsed, cert_not_after, url, body_cut=cut)
        kept = {k: headers[k] for k in KEPT_HEADERS if k in headers}
        if runlog is not None:
            await runlog.line(
                "response",
                f"HTTP {resp.status} {resp.reason or ''}, {len(body)} bytes in {elapsed:.0f} ms; "
                + ", ".join(f"{k}: {v[:80]}" for k, v in kept.items()),
            )
        return Observation(
            status=resp.status,
            headers=kept,
            elapsed_ms=round(elapsed, 2),
            body_bytes=len(body),
            cert_not_after=cert_not_after,
        ), response


def cannot_run(
    req: CheckRequested, agent: str, location: str, started: float, exc: BaseException
) -> CheckCompleted:
    """The completion of a request the agent could not even ask (a header its HTTP client
    refuses, a sealed request it cannot open, a bug): each
    check is an "error", so its task is unknown with the reason, at once, instead of a
    request redelivered until it is dead-lettered."""
    error = named(exc)
    why = f"the agent could not run the check: {error}"
    observation = Observation(error=error, error_kind="agent")
    outcomes = [CheckOutcome(s.task, s.kind, "error", why) for s in req.checks]
    return completed(req, agent, location, started, observation, outcomes)


#: The kinds judged on the answer to another URL than the group's, and how to make it.
_TARGETS: dict[str, Callable[[str], str]] = {
    kind: module.target_url for kind, module in CATALOGUE.items() if hasattr(module, "target_url")
}


def _target(kind: str, url: str) -> str:
    target = _TARGETS.get(kind)
    return target(url) if target is not None else url


def evaluate_all(
    req: CheckRequested,
    obs: Observation,
    response: Response | None,
    extra: dict[str, Answer] | None = None,
) -> list[CheckOutcome]:
    """Every check of the request on its answer; no answer fails the checks judged on it."""
    outcomes = []
    for spec in req.checks:
        # A check judged on another URL's answer is judged whatever the group's own gave.
        target = _target(spec.kind, req.url)
        answer_obs, answer = (
            (obs, response)
            if target == req.url
            else (extra or {}).get(
                target, (Observation(error="not requested", error_kind="probe"), None)
            )
        )
        if answer is None:
            why = f"{answer_obs.error_kind}: {answer_obs.error}"
            why = why if target == req.url else f"{target}: {why}"
            outcomes.append(CheckOutcome(spec.task, spec.kind, "failure", why))
            continue
        module = CATALOGUE.get(spec.kind)
        if module is None:
            outcomes.append(
                CheckOutcome(
                    spec.task,
                    spec.kind,
                    "error",
                    f"this agent does not know the check {spec.kind!r}",
                )
            )
            continue
        try:
            verdict = module.evaluate(answer, spec.expected)
        except Exception as exc:  # a check that cannot be evaluated is an error, not a crash
            outcomes.append(CheckOutcome(spec.task, spec.kind, "error", reason(exc)))
            continue
        outcomes.append(
            CheckOutcome(spec.task, spec.kind, verdict.status, verdict.detail, verdict.value)
        )
    return outcomes
