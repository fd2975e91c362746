"""The agent reports the expiry date; the scheduler's judge grades it (default thresholds)."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from checks import ssl_certificate_expiration as cert_check
from checks.judge import DEFAULT_THRESHOLDS, severity_of
from events.types import CheckCompleted, Observation, TaskDef
from tests.checksite import HTTP10, CheckSite

CASES = [
    pytest.param(timedelta(hours=6), "https", "success", "critical", id="6-hours-critical"),
    pytest.param(timedelta(days=3), "https", "success", "warning", id="3-days-warning"),
    pytest.param(timedelta(days=90), "https", "success", "ok", id="90-days-ok"),
    pytest.param(timedelta(days=3), "tls", "success", "warning", id="tls-target-3-days"),
    pytest.param(
        timedelta(hours=-1), "https", "failure", "warning", id="expired-fails-handshake-warning"
    ),
]


@pytest.mark.parametrize(("left", "scheme", "status", "severity"), CASES)
async def test_certificate_expiration(ca, left, scheme, status, severity):
    not_after = datetime.now(UTC).replace(microsecond=0) + left
    with CheckSite(ca, not_after=not_after) as site:
        outcome = await site.check(
            "/ok" if scheme == "https" else "", cert_check.NAME, "on-check", scheme
        )
    assert outcome.status == status, outcome.detail
    if status == "success":
        assert outcome.value == not_after.timestamp()
    observation = Observation(error=None if status == "success" else outcome.detail)
    completion = CheckCompleted(
        at=time.time(),
        request="r",
        group="g",
        agent="a",
        location="l",
        started=time.time(),
        observation=observation,
        outcomes=[outcome],
    )
    task = _task(outcome.task)
    assert severity_of(task, outcome, completion, DEFAULT_THRESHOLDS)[0] == severity


CLOSING = [
    pytest.param("/ok", id="keep-alive"),
    pytest.param("/close", id="connection-close-after-a-short-body"),
    pytest.param(HTTP10, id="http-1.0-answer"),
]


@pytest.mark.parametrize("path", CLOSING)
async def test_certificate_seen_when_the_connection_closes(ca, path):
    """The certificate is read as the answer starts: a server that hangs up after answering
    (closing the connection before the prober looked) once hid it, and an expiring one too."""
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=6)
    with CheckSite(ca, not_after=not_after) as site:
        outcome = await site.check(path, cert_check.NAME, "on-check", "https")
    assert (outcome.status, outcome.value) == ("success", not_after.timestamp()), outcome.detail


def _task(tid: str):

    return TaskDef(
        id=tid,
        group="g",
        domain="d",
        url="https://d",
        method="GET",
        ip_version=4,
        check=cert_check.NAME,
        expected="on-check",
        frequency=60,
    )


async def test_plain_http_sees_no_certificate(site):
    # The configuration refuses this check on http:// targets; the agent still answers sanely.
    outcome = await site.check("/ok", cert_check.NAME, "on-check", "http")
    assert (outcome.status, outcome.detail) == (
        "error",
        "no certificate was seen on this connection",
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("on-check", id="on-check"),
        pytest.param("5d", id="a-duration"),
        pytest.param(True, id="true"),
        pytest.param(30, id="a-number"),
        pytest.param(["x"], id="a-list"),
        pytest.param({"warning": "30d"}, id="a-mapping"),
    ],
)
def test_any_value_argos_takes_is_on_check(value):
    """Argos ignores the value (its schema only wants text, a whole number, a list or a
    mapping): the check is the same, and so is its task."""
    assert cert_check.parse(value) == "on-check"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(False, "false does not turn the check off", id="false"),
        pytest.param(1.5, "expected on-check", id="a-fraction"),
        pytest.param(None, "expected on-check", id="nothing"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError, match=message):
        cert_check.parse(value)
