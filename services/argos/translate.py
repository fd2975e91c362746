"""Between Tocsin's check requests and what Argos 0.10.3's agent reads and writes.

Pure functions. The Argos agent takes a list of tasks (``argos.schemas.Task``: an
integer id, the URL, ``ip_version`` "4"/"6", the check, its ``expected`` value as
the string Argos stores, the ``task_group`` it makes one request for) and sends
back one result per task (``AgentResult``: task id, status, context).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from checks import CATALOGUE
from checks.completion import completed
from checks.masking import NO_SECRETS, RequestSecrets
from events.types import (
    CheckCompleted,
    CheckOutcome,
    CheckRequested,
    CheckSpec,
    Observation,
    RequestData,
)

#: The checks Argos's agent knows (argos/checks/checks.py); Tocsin's others it cannot run.
ARGOS_CHECKS = {
    "status-is",
    "status-in",
    "body-contains",
    "body-like",
    "headers-contain",
    "headers-have",
    "headers-like",
    "json-contains",
    "json-has",
    "json-like",
    "json-is",
    "http-to-https",
    "ssl-certificate-expiration",
}
CERT_CHECK = "ssl-certificate-expiration"


def runnable(req: CheckRequested) -> bool:
    """Whether an Argos agent can make this request: HTTP(S) only."""
    return urlsplit(req.url).scheme in ("http", "https")


def argos_expected(kind: str, expected: Any) -> str:
    """The string Argos's configuration parser stores for this check and value
    (argos/schemas/config.py ``parse_checks``), which its check classes decode."""
    if kind == "http-to-https":
        if isinstance(expected, dict):
            return json.dumps({"range": [expected["start"], expected["stop"]]})
        return json.dumps({"list": expected})
    if kind == "json-is" or isinstance(expected, str):
        return str(expected)
    if isinstance(expected, int):
        return str(expected)
    return json.dumps(expected)


def tocsin_expected(kind: str, expected: str) -> Any:
    """The value Tocsin's parser gives for Argos's stored string, decoded as Argos's check
    classes decode it (argos/checks/checks.py)."""
    value: Any
    if kind == "http-to-https":
        spec = json.loads(expected)
        if "value" in spec:
            value = spec["value"]
        elif "list" in spec:
            value = spec["list"]
        else:
            value = {"start": spec["range"][0], "stop": spec["range"][1]}
    elif kind == "status-is":
        value = int(expected)
    elif kind in ("body-contains", "body-like", CERT_CHECK):
        value = expected
    else:
        value = json.loads(expected)
    return CATALOGUE[kind].parse(value)


def tocsin_request_data(stored: str | None) -> RequestData | None:
    """Argos's stored ``request_data`` (``{"data", "json", "headers"}`` as JSON text)."""
    if stored is None:
        return None
    rd = json.loads(stored)
    return RequestData(
        data=rd.get("data"), is_json=bool(rd.get("json")), headers=rd.get("headers") or {}
    )


def argos_request_data(req: CheckRequested) -> str | None:
    rd = req.request_data
    if rd is None:
        return None
    return json.dumps({"data": rd.data, "json": rd.is_json, "headers": rd.headers or None})


def argos_domain(url: str) -> str:
    """The website's ``domain`` as Argos gives it: its ``HttpUrl``, scheme and host with a
    trailing slash (``https://example.org/``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def argos_task(
    task_id: int, req: CheckRequested, spec: CheckSpec, agent: str, selected_at: float
) -> dict[str, Any]:
    """One task as ``GET /api/tasks`` of Argos answers it."""
    return {
        "id": task_id,
        "url": req.url,
        "domain": argos_domain(req.url),
        "ip_version": str(req.ip_version),
        "check": spec.kind,
        "method": req.method,
        "request_data": argos_request_data(req),
        "add_alerts_recipients": None,
        "overwrite_alerts_recipients": None,
        "expected": argos_expected(spec.kind, spec.expected),
        # The agent makes one request per task_group: Tocsin's request.
        "task_group": req.request,
        "retry_before_notification": 0,
        "contiguous_failures": 0,
        # Argos's server clock, local and without a zone (its datetime.now()).
        "selected_at": datetime.fromtimestamp(selected_at).isoformat(),
        "selected_by": agent,
    }


def _request_error(context: dict[str, Any]) -> str | None:
    """Argos's agent reports a request that got no answer as a failure whose context is the
    exception (``SerializableException``), the same for every task of the group."""
    if "error_type" in context and "error_message" in context:
        return f"{context['error_type']}: {context['error_message']}"
    return None


def outcome(
    spec: CheckSpec, status: str, context: dict[str, Any], at: float
) -> tuple[CheckOutcome, str | None]:
    """Tocsin's outcome of one Argos result, and the request error it reports if any.

    ``on-check`` is Argos's certificate check handing the grading to the server with
    ``expires_in`` (whole days): it becomes the expiry instant Tocsin's judge grades by
    ``ssl.thresholds``, as Argos's server would."""
    error = _request_error(context) if status == "failure" else None
    if status == "on-check":
        days = context.get("expires_in")
        if spec.kind != CERT_CHECK or not isinstance(days, int | float):
            return CheckOutcome(spec.task, spec.kind, "error", "on-check without expires_in"), None
        return (
            CheckOutcome(
                spec.task,
                spec.kind,
                "success",
                f"certificate expires in {days} days (Argos agent)",
                value=at + days * 86400,
            ),
            None,
        )
    if status not in ("success", "failure", "error"):
        return CheckOutcome(spec.task, spec.kind, "error", f"unknown status {status!r}"), None
    if error is not None:
        return CheckOutcome(spec.task, spec.kind, "failure", error), error
    if status == "error" and "error_message" in context:
        detail = f"{context.get('error_type', 'error')}: {context['error_message']}"
    else:
        shown = {k: v for k, v in context.items() if k != "error_details"}
        detail = json.dumps(shown, sort_keys=True) if shown else ""
    return CheckOutcome(spec.task, spec.kind, status, detail), None  # type: ignore[arg-type]


def completion(
    req: CheckRequested,
    results: dict[str, tuple[str, dict[str, Any]]],
    agent: str,
    location: str,
    started: float,
    at: float,
    secrets: RequestSecrets = NO_SECRETS,
) -> CheckCompleted:
    """The completion of a request from the Argos results of its checks (by Tocsin task id),
    ``secrets`` masked in its texts. A check Argos cannot run, or that came back without a
    result, is an error."""
    outcomes: list[CheckOutcome] = []
    # The request's own fate, from the checks judged on its answer (Argos's agent makes
    # http-to-https's request apart, to the http:// URL).
    errors: list[str | None] = []
    status_code: int | None = None
    for spec in req.checks:
        if spec.kind not in ARGOS_CHECKS:
            outcomes.append(
                CheckOutcome(
                    spec.task, spec.kind, "error", f"an Argos agent cannot run {spec.kind}"
                )
            )
            continue
        if spec.task not in results:
            outcomes.append(
                CheckOutcome(spec.task, spec.kind, "error", "the Argos agent sent no result")
            )
            continue
        status, context = results[spec.task]
        out, error = outcome(spec, status, context, at)
        outcomes.append(out)
        if spec.kind != "http-to-https":
            errors.append(error)
        retrieved = context.get("retrieved")
        if spec.kind in ("status-is", "status-in") and isinstance(retrieved, int):
            status_code = retrieved
    error = errors[0] if errors and all(e is not None for e in errors) else None
    observation = (
        Observation(error=error, error_kind="argos-agent")
        if error is not None
        else Observation(status=status_code)
    )
    return completed(req, agent, location, started, observation, outcomes, at, secrets)
