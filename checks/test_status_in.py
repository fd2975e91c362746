import pytest

from checks import status_in

CASES = [
    pytest.param("/ok", [200, 302], "success", id="200-in-list"),
    pytest.param("/moved", [200, 302], "success", id="302-in-list"),
    pytest.param("/broken", [200, 302], "failure", id="500-not-in-list"),
    pytest.param("/missing", [404], "success", id="single-element"),
]


@pytest.mark.parametrize(("path", "expected", "status"), CASES)
async def test_status_in(site, path, expected, status):
    outcome = await site.check(path, status_in.NAME, expected)
    assert outcome.status == status, outcome.detail


def test_codes_are_normalised():
    assert status_in.parse([302, 200, 200]) == [200, 302]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(200, "expected a non-empty list such as [200, 302], got int 200", id="scalar"),
        pytest.param([], "expected a non-empty list", id="empty"),
        pytest.param(
            [200, "ok"], "expected an HTTP status code (100-599), got 'ok'", id="not-a-code"
        ),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        status_in.parse(value)
    assert message in str(err.value)
