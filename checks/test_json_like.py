import pytest

from checks import json_like

CASES = [
    pytest.param({"/version": r"^2\.\d+\.\d+$"}, "success", id="string-value"),
    pytest.param({"/count": r"^\d+$"}, "success", id="number-as-json-text"),
    pytest.param({"/ok": "^true$"}, "success", id="boolean-as-json-text"),
    pytest.param({"/version": r"^3\."}, "failure", id="no-match"),
    pytest.param({"/missing": "."}, "failure", id="missing"),
]


@pytest.mark.parametrize(("expected", "status"), CASES)
async def test_json_like(site, expected, status):
    outcome = await site.check("/json", json_like.NAME, expected)
    assert outcome.status == status, outcome.detail


async def test_not_json_is_an_error(site):
    outcome = await site.check("/not-json", json_like.NAME, {"/version": "."})
    assert outcome.status == "error"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param({"/version": "(2"}, "invalid regular expression '(2'", id="bad-regex"),
        pytest.param({"version": "2"}, "a JSON pointer starts with '/'", id="bad-pointer"),
        pytest.param({"/version": False}, "got bool False", id="boolean"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        json_like.parse(value)
    assert message in str(err.value)


def test_parse_reads_numbers_as_their_text():
    """As Argos (its mapping goes through JSON): ``{/n: 3}`` is the pattern 3."""
    assert json_like.parse({"/n": 3, "/r": 0.5}) == {"/n": "3", "/r": "0.5"}
