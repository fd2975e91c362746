import pytest

from checks import status_is
from tests.checksite import SLOW
from tests.probing import probe

CASES = [
    pytest.param("/ok", 200, "http", "success", id="200-is-200"),
    pytest.param("/ok", 200, "https", "success", id="200-is-200-over-https"),
    pytest.param("/broken", 200, "http", "failure", id="500-is-not-200"),
    pytest.param("/broken", 500, "http", "success", id="expecting-500"),
    pytest.param("/moved", 302, "http", "success", id="redirect-not-followed"),
    pytest.param("/moved", 200, "http", "failure", id="redirect-is-not-its-target"),
    pytest.param("/missing", 404, "https", "success", id="404-expected"),
]


@pytest.mark.parametrize(("path", "expected", "scheme", "status"), CASES)
async def test_status_is(site, path, expected, scheme, status):
    outcome = await site.check(path, status_is.NAME, expected, scheme)
    assert (outcome.status, outcome.kind) == (status, "status-is"), outcome.detail


async def test_head_answer_has_no_body_to_wait_for(site):
    # Its Content-Length announces a body a HEAD answer never carries: nothing to read.
    outcome = await site.check("/ok", status_is.NAME, 200, method="HEAD", request_timeout=2.0)
    assert outcome.status == "success", outcome.detail


async def test_no_answer_in_time_is_a_timeout(site):
    outcome = await site.check(SLOW, status_is.NAME, 200, request_timeout=0.2)
    assert (outcome.status, outcome.detail) == ("failure", "timeout: no answer within 0.2s")


async def test_body_slower_than_the_timeout_is_a_timeout(streams):
    # The headers and a first piece come at once: the timeout covers the whole body too.
    done = await probe(f"{streams.url}/stalled", status_is.NAME, 200, timeout=0.5)
    assert done.observation.error_kind == "timeout"
    assert done.outcomes[0].detail == "timeout: no answer within 0.5s"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("OK", id="string"),
        pytest.param(99, id="too-low"),
        pytest.param(600, id="too-high"),
        pytest.param(True, id="boolean"),
        pytest.param([200], id="list"),
    ],
)
def test_parse_refuses(value):
    with pytest.raises(ValueError, match="expected an HTTP status code"):
        status_is.parse(value)
