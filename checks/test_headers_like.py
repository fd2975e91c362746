import pytest

from checks import headers_like

CASES = [
    pytest.param("/ok", {"x-powered-by": r"^Tocsin-test/1\.\d"}, "success", id="matches"),
    pytest.param("/ok", {"X-Powered-By": "test"}, "success", id="search-not-full-match"),
    pytest.param("/ok", {"x-powered-by": "^nginx"}, "failure", id="does-not-match"),
    pytest.param("/ok", {"server-x": "."}, "failure", id="missing"),
]


@pytest.mark.parametrize(("path", "expected", "status"), CASES)
async def test_headers_like(site, path, expected, status):
    outcome = await site.check(path, headers_like.NAME, expected, "https")
    assert outcome.status == status, outcome.detail


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param({"server": "[nginx"}, "invalid regular expression '[nginx'", id="bad-regex"),
        pytest.param(["server"], "expected a non-empty mapping", id="list"),
        pytest.param({"x-a": True}, "got bool True", id="boolean"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        headers_like.parse(value)
    assert message in str(err.value)


def test_parse_reads_numbers_as_their_text():
    """As Argos (its mapping goes through JSON): ``{x-count: 5}`` is the pattern 5."""
    assert headers_like.parse({"X-Count": 5, "x-ratio": 1.5}) == {"x-count": "5", "x-ratio": "1.5"}
