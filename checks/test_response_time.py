import pytest

from checks import response_time
from tests.checksite import SLOW, SLOW_DELAY

CASES = [
    pytest.param(
        "/ok", {"warning": "500ms", "critical": "2s"}, "http", "success", "ok", id="fast-ok"
    ),
    pytest.param(
        SLOW,
        {"warning": "300ms", "critical": "2s"},
        "http",
        "success",
        "warning",
        id="slow-warning",
    ),
    pytest.param(
        SLOW,
        {"warning": "100ms", "critical": "400ms"},
        "https",
        "failure",
        "critical",
        id="slow-critical",
    ),
    pytest.param(SLOW, {"critical": "10s"}, "http", "success", "ok", id="critical-only"),
    pytest.param("", {"warning": "1s"}, "tcp", "success", "ok", id="tcp-connect-time"),
]


@pytest.mark.parametrize(("path", "expected", "scheme", "status", "grade"), CASES)
async def test_response_time(site, path, expected, scheme, status, grade):
    outcome = await site.check(path, response_time.NAME, expected, scheme)
    assert outcome.status == status, outcome.detail
    assert outcome.value is not None
    if path == SLOW:
        assert outcome.value >= SLOW_DELAY * 1000
    assert response_time.grade(outcome.value, response_time.parse(expected)) == grade


def test_parse_in_milliseconds():
    assert response_time.parse({"warning": "500ms", "critical": "2s"}) == {
        "warning": 500.0,
        "critical": 2000.0,
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            {"warning": "2s", "critical": "1s"},
            "the warning limit must be below the critical one",
            id="warning-above-critical",
        ),
        pytest.param(
            {"warn": "1s"},
            "unknown limit 'warn': only warning and critical are known",
            id="unknown-limit",
        ),
        pytest.param({"warning": 500}, "expected a duration such as 500ms", id="no-unit"),
        pytest.param("1s", "expected limits such as {warning: 500ms, critical: 2s}", id="scalar"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        response_time.parse(value)
    assert message in str(err.value)
