import pytest

from checks import json_has

CASES = [
    pytest.param({"/status": "up"}, "success", id="string"),
    pytest.param({"/count": 3, "/ok": True}, "success", id="number-and-boolean"),
    pytest.param({"/items": [1, 2]}, "success", id="list"),
    pytest.param({"/nested/x": None}, "success", id="null"),
    pytest.param({"/status": "down"}, "failure", id="other-string"),
    pytest.param({"/count": "3"}, "failure", id="string-is-not-number"),
    pytest.param({"/ok": 1}, "failure", id="true-is-not-1"),
    pytest.param({"/missing": 1}, "failure", id="missing"),
]


@pytest.mark.parametrize(("expected", "status"), CASES)
async def test_json_has(site, expected, status):
    outcome = await site.check("/json", json_has.NAME, expected)
    assert outcome.status == status, outcome.detail


async def test_not_json_is_an_error(site):
    outcome = await site.check("/not-json", json_has.NAME, {"/status": "up"})
    assert outcome.status == "error"
    assert outcome.detail.startswith("the body is not JSON")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param({"status": "up"}, "a JSON pointer starts with '/'", id="no-leading-slash"),
        pytest.param(["/status"], "expected a non-empty mapping such as {/status: up}", id="list"),
    ],
)
def test_parse_refuses(value, message):
    with pytest.raises(ValueError) as err:
        json_has.parse(value)
    assert message in str(err.value)
