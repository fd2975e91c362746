import pytest

from checks import headers_have
from tests.checksite import ROUTES

CASES = [
    pytest.param("/ok", {"content-type": "text/plain"}, "success", id="exact"),
    pytest.param("/ok", {"Cache-Control": "no-cache"}, "success", id="name-case-insensitive"),
    pytest.param("/ok", {"content-type": "text/html"}, "failure", id="other-value"),
    pytest.param("/ok", {"content-type": "text/plai"}, "failure", id="prefix-is-not-equal"),
    pytest.param("/ok", {"x-missing": "a"}, "failure", id="missing"),
    pytest.param(
        "/json", {"content-length": len(ROUTES["/json"][2])}, "success", id="number-as-text"
    ),
]


@pytest.mark.parametrize(("path", "expected", "status"), CASES)
async def test_headers_have(site, path, expected, status):
    outcome = await site.check(path, headers_have.NAME, expected)
    assert outcome.status == status, outcome.detail


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(["content-type"], "expected a non-empty mapping", id="list"),
        pytest.param({"a": None}, "header a: expected a value, got None", id="no-value"),
        pytest.param({"a": [1]}, "header a: expected a value", id="list-value"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        headers_have.parse(value)
    assert message in str(err.value)
