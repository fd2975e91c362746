import pytest

from checks import headers_contain

CASES = [
    pytest.param("/ok", ["content-type"], "success", id="present"),
    pytest.param("/ok", ["Content-Type", "X-POWERED-BY"], "success", id="case-insensitive"),
    pytest.param("/ok", ["content-type", "x-missing"], "failure", id="one-missing"),
    pytest.param("/moved", ["location"], "success", id="location-of-redirect"),
]


@pytest.mark.parametrize(("path", "expected", "status"), CASES)
async def test_headers_contain(site, path, expected, status):
    outcome = await site.check(path, headers_contain.NAME, expected)
    assert outcome.status == status, outcome.detail


def test_names_are_normalised():
    assert headers_contain.parse(["X-A", "x-a", "B"]) == ["b", "x-a"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("content-type", id="string-not-list"),
        pytest.param({"a": 1}, id="mapping"),
        pytest.param([], id="empty"),
    ],
)
def test_parse_refuses(value):
    with pytest.raises(ValueError, match="expected a non-empty list"):
        headers_contain.parse(value)
