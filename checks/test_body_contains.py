import pytest

from checks import body_contains

CASES = [
    pytest.param("/ok", "fine", "http", "success", id="substring"),
    pytest.param("/ok", "fine", "https", "success", id="substring-over-https"),
    pytest.param("/ok", "Fine", "http", "failure", id="case-sensitive"),
    pytest.param("/json", '"status": "up"', "http", "success", id="json-text"),
    pytest.param("/broken", "fine", "http", "failure", id="absent"),
    pytest.param("/moved", "fine", "http", "failure", id="empty-body-of-redirect"),
]


@pytest.mark.parametrize(("path", "expected", "scheme", "status"), CASES)
async def test_body_contains(site, path, expected, scheme, status):
    outcome = await site.check(path, body_contains.NAME, expected, scheme)
    assert outcome.status == status, outcome.detail


@pytest.mark.parametrize(
    "value",
    [pytest.param("", id="empty"), pytest.param(5, id="number"), pytest.param(None, id="nothing")],
)
def test_parse_refuses(value):
    with pytest.raises(ValueError, match="expected a non-empty string"):
        body_contains.parse(value)
